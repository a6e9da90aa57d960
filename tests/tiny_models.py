"""Tiny, randomly initialised HF checkpoints for driving lmms-eval's own model classes offline on a CPU.

Each builder writes a folder that the harness loads by path exactly as it loads a hub checkpoint
(``from_pretrained(<folder>)``): ``config.json`` + ``model.safetensors`` (``save_pretrained``), a byte-level BPE
tokenizer trained here with the ``tokenizers`` library (``tokenizer.json`` / ``tokenizer_config.json``), the image
processor and video processor configs and the chat template, all written by the model's own transformers processor
class (``save_pretrained``) around a ChatML-style chat template written for these tests. Nothing is downloaded.
Written for transformers 4.55 (the version the project locks).

Sizes: hidden 32, one layer, two heads, a 400-token vocabulary; a few hundred thousand parameters at most.
"""

from __future__ import annotations

from pathlib import Path

from convis_tasks.prompting import render_prompt

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
NORM = {"image_mean": OPENAI_CLIP_MEAN, "image_std": OPENAI_CLIP_STD}  # what the tests undo

# A ChatML conversation (system/user/assistant turns between <|im_start|> and <|im_end|>); a visual content item
# becomes the model's placeholder. `{placeholders}` is filled per model family below.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}{{ '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'video' or 'video' in item %}@VIDEO@"
    "{% elif item['type'] == 'image' or 'image' in item %}@IMAGE@"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant{{ '\\n' }}{% endif %}"
)


def _corpus() -> list[str]:
    prompts = [render_prompt(variant, name) for variant in ("benchmark", "cot", "structured")
               for name in ("Main Action", "Main Subjects", "Main Objects", "Location", "Order Of Actions")]
    prompts.append(render_prompt("global", None))
    return prompts + ["You are a helpful assistant.", "system user assistant", "1 2 3 4 5 Score: 3.5"]


def build_tokenizer(special_tokens: list[str], eos: str, pad: str, vocab_size: int = 400, cls=None):
    """A byte-level BPE tokenizer trained on the ConViS prompts (any text encodes; decoding is exact), wrapped in
    the transformers class ``cls`` (default ``PreTrainedTokenizerFast``; a processor may insist on its own)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer)
    return (cls or PreTrainedTokenizerFast)(tokenizer_object=tok, eos_token=eos, pad_token=pad)


def _answer_with_a_digit(model, tokenizer) -> None:
    """Make the random model answer like a ConViS model: its generation config suppresses every token but the
    digits 1-5 (a standard ``generation_config.suppress_tokens`` default, which the harness's ``generate`` calls
    inherit), so each greedy answer parses as a score."""
    digits = {tokenizer.convert_tokens_to_ids(str(d)) for d in range(1, 6)}
    model.generation_config.suppress_tokens = [i for i in range(len(tokenizer)) if i not in digits]


def build_qwen2_5_vl(folder: str | Path, *, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 16,
                     seed: int = 0) -> Path:
    """A Qwen2.5-VL checkpoint (``Qwen2_5_VLForConditionalGeneration``): vision depth 1, hidden 32, patch 14,
    spatial merge 2, temporal patch 2; text 1 layer, hidden 32, M-RoPE sections (2, 3, 3)."""
    import torch
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2TokenizerFast, Qwen2VLImageProcessor)
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
               "<|image_pad|>", "<|video_pad|>"]
    tokenizer = build_tokenizer(special, eos="<|im_end|>", pad="<|endoftext|>", cls=Qwen2TokenizerFast)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special}
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                         rope_theta=10000.0, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[0], tokens_per_second=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    _answer_with_a_digit(model, tokenizer)
    model.save_pretrained(folder)
    template = CHAT_TEMPLATE.replace("@VIDEO@", "<|vision_start|><|video_pad|><|vision_end|>") \
                            .replace("@IMAGE@", "<|vision_start|><|image_pad|><|vision_end|>")
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels, **NORM),
                        video_processor=Qwen2VLVideoProcessor(size=dict(size), **NORM), tokenizer=tokenizer,
                        chat_template=template).save_pretrained(folder)
    return folder


def build_llava_onevision(folder: str | Path, *, image_size: int = 64, patch_size: int = 16, seed: int = 0) -> Path:
    """A LLaVA-OneVision checkpoint in HF format (``LlavaOnevisionForConditionalGeneration``, as
    ``llava-hf/llava-onevision-qwen2-7b-ov-hf``): SigLIP vision tower (1 layer, hidden 32, ``image_size`` /
    ``patch_size`` patches a side), Qwen2 text model (1 layer, hidden 32). Video frames are resized to
    ``image_size`` square, the size the vision tower takes."""
    import torch
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, Qwen2TokenizerFast)
    from transformers.models.llava_onevision.video_processing_llava_onevision import LlavaOnevisionVideoProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
    tokenizer = build_tokenizer(special, eos="<|im_end|>", pad="<|endoftext|>", cls=Qwen2TokenizerFast)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special}
    pinpoints = [[image_size, image_size], [image_size, 2 * image_size], [2 * image_size, image_size],
                 [2 * image_size, 2 * image_size]]
    config = LlavaOnevisionConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2, image_size=image_size,
                           patch_size=patch_size, vision_use_head=False),
        text_config=dict(model_type="qwen2", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=4096, bos_token_id=ids["<|endoftext|>"],
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]),
        image_token_index=ids["<image>"], video_token_index=ids["<video>"], image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full", vision_feature_layer=-1)
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config)
    _answer_with_a_digit(model, tokenizer)
    model.save_pretrained(folder)
    size = {"height": image_size, "width": image_size}
    template = CHAT_TEMPLATE.replace("@VIDEO@", "<video>\n").replace("@IMAGE@", "<image>\n")
    LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=dict(size), image_grid_pinpoints=pinpoints, **NORM),
        video_processor=LlavaOnevisionVideoProcessor(size=dict(size), **NORM), tokenizer=tokenizer,
        num_image_tokens=(image_size // patch_size) ** 2, vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9", chat_template=template).save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------------------------
# LLaVA-NeXT (the `llava` package behind lmms-eval's llava_onevision and llava_vid)
# --------------------------------------------------------------------------------------------

SIGLIP_ID = "google/siglip-so400m-patch14-384"  # the id LLaVA-NeXT resolves its SigLIP tower by


def build_siglip_in_hub_cache(hub_cache: str | Path, *, hidden_size: int = 32, seed: int = 0) -> Path:
    """A tiny random SigLIP vision tower saved in a Hugging Face hub cache (``HF_HUB_CACHE`` layout:
    ``models--google--siglip-so400m-patch14-384/{refs/main, snapshots/<rev>/}``) under the real id, so that
    LLaVA-NeXT finds it by name with ``HF_HUB_OFFLINE=1``. Two layers (LLaVA-NeXT drops the last), ``hidden_size``
    wide, 384 px images in 14 px patches: the 729 patches LLaVA-NeXT's SigLIP code asserts. Returns the snapshot."""
    import torch
    from transformers import SiglipVisionConfig, SiglipVisionModel

    revision = "0" * 40  # any commit hash: refs/main points to it
    repo = Path(hub_cache) / ("models--" + SIGLIP_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    config = SiglipVisionConfig(hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2,
                                num_attention_heads=2, image_size=384, patch_size=14)
    torch.manual_seed(seed)
    SiglipVisionModel(config).save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def build_llava_next_qwen(folder: str | Path, siglip: str | Path, *, seed: int = 0) -> Path:
    """A LLaVA-NeXT ``llava_qwen`` checkpoint (``LlavaQwenForCausalLM``, the architecture of
    ``lmms-lab/llava-onevision-qwen2-*-ov`` and ``lmms-lab/LLaVA-Video-*-Qwen2``): a Qwen2 language model (1 layer,
    hidden 32), a 2-layer GELU MLP projector, the ``image_newline`` vector, and the vision tower's weights taken from
    the SigLIP snapshot ``siglip`` (:func:`build_siglip_in_hub_cache`), as the released checkpoints carry their
    fine-tuned tower. Its config follows theirs (``anyres_max_9``, ``spatial_unpad``, no image start/end or patch
    tokens) and names the tower by :data:`SIGLIP_ID`, which LLaVA-NeXT resolves in the hub cache when it loads.

    lmms-eval's ``llava_vid`` picks the architecture from the folder name (it must contain "llava" and "qwen"), so
    name ``folder`` accordingly. Requires LLaVA-NeXT's ``llava`` package."""
    import torch
    from llava.model.language_model.llava_qwen import LlavaQwenConfig, LlavaQwenForCausalLM
    from transformers import Qwen2TokenizerFast, SiglipVisionConfig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = build_tokenizer(special, eos="<|im_end|>", pad="<|endoftext|>", cls=Qwen2TokenizerFast)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special}
    pinpoints = [[384 * i, 384 * j] for i in range(1, 4) for j in range(1, 4)]
    config = LlavaQwenConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=8192, bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=False,
        architectures=["LlavaQwenForCausalLM"], mm_vision_tower=SIGLIP_ID,
        mm_hidden_size=SiglipVisionConfig.from_pretrained(siglip).hidden_size,
        mm_projector_type="mlp2x_gelu", mm_vision_select_layer=-2, mm_vision_select_feature="patch",
        mm_patch_merge_type="spatial_unpad", image_aspect_ratio="anyres_max_9", image_grid_pinpoints=pinpoints,
        mm_spatial_pool_mode="bilinear", mm_spatial_pool_stride=2, mm_newline_position="one_token",
        mm_use_im_start_end=False, mm_use_im_patch_token=False, tokenizer_model_max_length=8192,
        tokenizer_padding_side="right", delay_load=True)  # build the tower below, from `siglip`, not by its id
    torch.manual_seed(seed)
    model = LlavaQwenForCausalLM(config)
    tower = model.get_vision_tower()
    tower.vision_tower_name = str(siglip)
    tower.load_model()  # LLaVA-NeXT's own loading (it drops the last layer and the pooling head)
    tower.vision_tower_name = SIGLIP_ID
    with torch.no_grad():  # LLaVA-NeXT allocates it with torch.empty (its training code fills it)
        model.get_model().image_newline.normal_(0.0, 1.0 / 32 ** 0.5)
    _answer_with_a_digit(model, tokenizer)
    model.config.delay_load = False  # as released: the tower is built when the checkpoint is loaded
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
