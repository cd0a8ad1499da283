from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#") and "pytest" not in line]


setup(
    name="kdtools",
    version="0.1.0",
    description="Knowledge distillation for object detection on mmdet 3 / mmengine",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kdtools", "kdtools.*"]),
    python_requires=">=3.10",
    install_requires=read_requirements(),
    license="Apache-2.0",
)
