"""The torchvision-free video path (convis_tasks.model_wrappers.cpu_video) against transformers and qwen-vl-utils.

* the Qwen2-VL video patch layout equals transformers' own (PIL) image processor's for a still video;
* the LLaVA-OneVision video normalisation equals transformers' LLaVA-OneVision image processor's;
* ``process_vision_info`` picks the same frames, sizes and metadata as qwen-vl-utils 0.0.14 itself, run here with a
  stand-in ``torchvision`` module whose only job is the resize (the same Pillow resize on both sides);
* without torchvision, transformers' own loader fails the way docs/models.md says, and the patch is undone on exit.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("lmms_eval") is None or importlib.util.find_spec("transformers") is None,
    reason="lmms-eval / transformers are not installed (pip install -e '.[harness]')")

from convis_tasks.utils.dataset import DEMO_DIR  # noqa: E402
from convis_tasks.utils.video import PairClipCache  # noqa: E402



@pytest.fixture(scope="module", autouse=True)
def offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


def _frame(seed: int, size=(56, 84)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def test_qwen_video_patches_equal_transformers_image_patches_for_a_still_video():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from convis_tasks.model_wrappers.cpu_video import QwenVLVideoProcessor

    size = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 64}
    image = _frame(0)
    # an image is a video of temporal_patch_size identical frames (transformers broadcasts it over time)
    ours = QwenVLVideoProcessor(size=size)(videos=[np.stack([image, image])], return_tensors="pt")
    theirs = Qwen2VLImageProcessorPil(size=size)(images=[image], return_tensors="pt")
    assert ours["video_grid_thw"].tolist() == theirs["image_grid_thw"].tolist() == [[1, 4, 6]]
    assert ours["pixel_values_videos"].shape == theirs["pixel_values"].shape
    assert np.allclose(ours["pixel_values_videos"].numpy(), theirs["pixel_values"].numpy(), atol=1e-5)
    # and time is the slow axis: frames 0,1 form temporal patch 0, frames 2,3 patch 1
    video = np.stack([_frame(1), _frame(1), _frame(2), _frame(2)])
    rows = QwenVLVideoProcessor(size=size)(videos=[video], return_tensors="pt")["pixel_values_videos"].numpy()
    for t, seed in ((0, 1), (1, 2)):
        still = Qwen2VLImageProcessorPil(size=size)(images=[_frame(seed)], return_tensors="pt")["pixel_values"]
        assert np.allclose(rows[t * 24:(t + 1) * 24], still.numpy(), atol=1e-5)


def test_qwen_video_processor_pads_an_odd_frame_count_with_the_last_frame():
    from convis_tasks.model_wrappers.cpu_video import QwenVLVideoProcessor

    proc = QwenVLVideoProcessor(size={"shortest_edge": 56 * 56, "longest_edge": 56 * 56})
    three = proc(videos=[np.stack([_frame(i, (56, 56)) for i in range(3)])], return_tensors="pt")
    four = proc(videos=[np.stack([_frame(i, (56, 56)) for i in (0, 1, 2, 2)])], return_tensors="pt")
    assert three["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert np.array_equal(three["pixel_values_videos"].numpy(), four["pixel_values_videos"].numpy())


def test_a_video_path_is_decoded_whole_in_order(tmp_path):
    from convis_tasks.model_wrappers.cpu_video import LlavaOnevisionVideoProcessor
    from convis_tasks.utils.video import read_frames

    clip = PairClipCache(tmp_path).get(DEMO_DIR / "videos/v01.mp4", DEMO_DIR / "videos/v03.mp4", n_frames=8)
    proc = LlavaOnevisionVideoProcessor(size={"height": 64, "width": 64}, do_normalize=False, do_rescale=False)
    out = proc(videos=[clip], return_tensors="pt", return_metadata=True)
    frames = out["pixel_values_videos"][0].numpy().transpose(0, 2, 3, 1)
    assert np.array_equal(frames, read_frames(clip, 16).astype(np.float32))
    (meta,) = out["video_metadata"]
    assert meta.total_num_frames == 16 and meta.fps == 1.0 and list(meta.frames_indices) == list(range(16))


def test_llava_video_frames_are_normalised_like_transformers_llava_onevision_images():
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import \
        LlavaOnevisionImageProcessorPil

    from convis_tasks.model_wrappers.cpu_video import LlavaOnevisionVideoProcessor

    image = _frame(3, (64, 64))
    ours = LlavaOnevisionVideoProcessor(size={"height": 64, "width": 64})(videos=[np.stack([image, image])],
                                                                        return_tensors="pt")
    theirs = LlavaOnevisionImageProcessorPil(size={"height": 64, "width": 64},
                                             image_grid_pinpoints=[[64, 64]])(images=[image], return_tensors="pt")
    assert tuple(ours["pixel_values_videos"].shape) == (1, 2, 3, 64, 64)
    base = theirs["pixel_values"][0][0].numpy()  # the whole image at the base resolution
    assert np.allclose(ours["pixel_values_videos"][0, 0].numpy(), base, atol=1e-5)


def test_load_processor_gives_the_models_own_processor_class(qwen_dir, llava_dir):
    from transformers import LlavaOnevisionProcessor, Qwen2_5_VLProcessor

    from convis_tasks.model_wrappers.cpu_video import load_processor

    qwen = load_processor(str(qwen_dir), min_pixels=3136, max_pixels=12544)
    llava = load_processor(str(llava_dir))
    assert isinstance(qwen, Qwen2_5_VLProcessor) and isinstance(llava, LlavaOnevisionProcessor)
    assert qwen.video_processor.size == {"shortest_edge": 3136, "longest_edge": 12544}
    assert qwen.image_processor.size["shortest_edge"] == 3136
    assert llava.video_processor.size == {"height": 64, "width": 64} and llava.num_image_tokens == 16
    assert "<|im_start|>" in qwen.chat_template and str(qwen)  # the repr serialises


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed here")
def test_without_torchvision_the_stock_loaders_fail_as_documented(qwen_dir, llava_dir):
    from transformers import AutoProcessor

    for folder, name in ((qwen_dir, "Qwen2VLVideoProcessor"), (llava_dir, "LlavaOnevisionVideoProcessor")):
        with pytest.raises(ImportError, match=f"{name} requires the Torchvision library"):
            AutoProcessor.from_pretrained(str(folder))
    import lmms_eval.models.simple.qwen2_5_vl as simple

    assert simple.process_vision_info is None  # qwen_vl_utils imports torchvision at module level
    if importlib.util.find_spec("qwen_vl_utils") is not None:
        with pytest.raises(ModuleNotFoundError, match="torchvision"):
            importlib.import_module("qwen_vl_utils")


def test_harness_module_patch_is_undone_on_exit():
    import lmms_eval.models.chat.qwen2_5_vl as chat
    import lmms_eval.models.simple.qwen2_5_vl as simple

    from convis_tasks.model_wrappers import cpu_video

    before = (simple.AutoProcessor, simple.process_vision_info, chat.process_vision_info)
    with cpu_video.harness_module_patched(simple, chat):
        if not cpu_video.torchvision_available():
            assert simple.process_vision_info is cpu_video.process_vision_info
            assert chat.process_vision_info is cpu_video.process_vision_info
            assert simple.AutoProcessor is not before[0]
    assert (simple.AutoProcessor, simple.process_vision_info, chat.process_vision_info) == before


# --------------------------------------------------------------------------------------------
# process_vision_info against qwen-vl-utils itself
# --------------------------------------------------------------------------------------------


@pytest.fixture
def real_qwen_vl_utils(monkeypatch):
    """qwen-vl-utils 0.0.14 imported with a stand-in ``torchvision`` (it needs only ``__version__``, ``io``,
    ``transforms.functional.resize`` and ``InterpolationMode``): the resize is the same Pillow bicubic resize the
    torchvision-free path uses, so everything else (frame choice, sizes, metadata) is qwen-vl-utils' own code."""
    if importlib.util.find_spec("qwen_vl_utils") is None:
        pytest.skip("qwen-vl-utils is not installed")
    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed: nothing to stand in for")
    import torch

    from convis_tasks.model_wrappers.cpu_video import _resize_frames

    def resize(video, size, interpolation=None, antialias=True):
        frames = video.permute(0, 2, 3, 1).numpy()
        out = _resize_frames(frames.astype(np.uint8) if frames.dtype != np.uint8 else frames, *size)
        return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))

    tv = types.ModuleType("torchvision")
    tv.__version__ = "0.28.0"
    tv.io = types.ModuleType("torchvision.io")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.functional = types.SimpleNamespace(resize=resize)
    tv.transforms.InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic")
    for name, module in (("torchvision", tv), ("torchvision.io", tv.io), ("torchvision.transforms", tv.transforms)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv("FORCE_QWENVL_VIDEO_READER", "decord")
    for name in [m for m in sys.modules if m.startswith("qwen_vl_utils")]:
        monkeypatch.delitem(sys.modules, name)
    import qwen_vl_utils

    yield qwen_vl_utils
    for name in [m for m in sys.modules if m.startswith("qwen_vl_utils")]:
        del sys.modules[name]


@pytest.mark.parametrize("element", [
    {},  # lmms-eval's simple qwen2_5_vl: no frame arguments (qwen-vl-utils' default 2 fps)
    {"nframes": 16},  # the chat class: nframes = min(max_num_frames, frames)
    {"nframes": 8},
    {"fps": 1.0},
    {"fps": 0.5, "min_pixels": 56 * 56, "max_pixels": 112 * 112},
    {"min_pixels": 256 * 28 * 28, "max_pixels": 1605632},  # lmms-eval's defaults
])
def test_process_vision_info_picks_what_qwen_vl_utils_picks(real_qwen_vl_utils, tmp_path, element):
    from convis_tasks.model_wrappers.cpu_video import process_vision_info

    clip = PairClipCache(tmp_path).get(DEMO_DIR / "videos/v01.mp4", DEMO_DIR / "videos/v03.mp4", n_frames=8)
    for path in (clip, str(DEMO_DIR / "videos/v05.mp4")):
        messages = [{"role": "user", "content": [{"type": "video", "video": path, **element},
                                                 {"type": "video", "video": path, **element},
                                                 {"type": "text", "text": "x"}]}]
        ref_images, ref_videos, ref_kwargs = real_qwen_vl_utils.process_vision_info(
            messages, return_video_kwargs=True, return_video_metadata=True)
        images, videos, kwargs = process_vision_info(messages, return_video_kwargs=True, return_video_metadata=True)
        assert images is None and ref_images is None and kwargs == ref_kwargs
        for (video, meta), (ref_video, ref_meta) in zip(videos, ref_videos):
            assert video.shape == ref_video.shape and video.dtype == ref_video.dtype
            assert np.array_equal(video.numpy(), ref_video.numpy())
            assert meta["frames_indices"] == list(ref_meta["frames_indices"])
            assert (meta["fps"], meta["total_num_frames"]) == (ref_meta["fps"], ref_meta["total_num_frames"])
        # and the two-value form lmms-eval's simple class uses
        _, plain = process_vision_info(messages)
        _, ref_plain = real_qwen_vl_utils.process_vision_info(messages)
        assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(plain, ref_plain))
