import pytest

from convis_tasks.prompting import PROMPT_VARIANTS, render_prompt

# The benchmark prompt as the issue and the paper state it, for concept C.
BENCHMARK = (
    "You are an AI designed to compare two videos based on the visual concept of '{c}'. "
    "The input consists of a sequence of concatenated frames: the first half represents Video 1, and the second "
    "half represents Video 2. Your task is to evaluate how similar these two videos are with respect to the "
    "concept '{c}'. Output a single similarity score between 1 and 5, where 1 means completely different and 5 "
    "means perfectly similar in terms of '{c}'. Do not explain your reasoning. Only output the numerical score."
)


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("concept", ["Location", "Main Action", "point of view"])
def test_benchmark_prompt_is_the_published_text(concept):
    rendered = render_prompt("benchmark", concept)
    assert _words(rendered) == BENCHMARK.format(c=concept)
    # line layout of the authors' system prompt: a blank line after the first sentence, one trailing newline
    assert rendered.startswith("You are an AI") and rendered.endswith("numerical score.\n")
    assert rendered.split("\n")[1] == ""


def test_global_prompt_names_no_concept():
    text = render_prompt("global")
    assert "concept" not in text and "Video 1" in text and "between 1 and 5" in text


@pytest.mark.parametrize("variant", ["cot", "structured"])
def test_reasoning_variants_ask_for_a_parseable_final_score(variant):
    with_concept = render_prompt(variant, "Location")
    assert "'Location'" in with_concept
    assert "concept" not in render_prompt(variant, None)
    assert ("Score: N" in with_concept) if variant == "cot" else ("<CONCLUSION>" in with_concept)


def test_bad_variant_or_missing_concept_is_a_clear_error():
    assert set(PROMPT_VARIANTS) == {"benchmark", "global", "cot", "structured"}
    with pytest.raises(ValueError, match="unknown prompt variant"):
        render_prompt("chatty", "Location")
    with pytest.raises(ValueError, match="needs a concept"):
        render_prompt("benchmark", None)
