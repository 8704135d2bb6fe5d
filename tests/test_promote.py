"""weights/scripts/promote.py's shipping step: the manifest line follows the file in weights/, and a copy
elsewhere (what a candidate is compared against during training) leaves the manifest alone."""

import hashlib
import importlib.util

from conftest import ROOT


def load_promote():
    spec = importlib.util.spec_from_file_location("promote", ROOT / "weights" / "scripts" / "promote.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def folder_with_manifest(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    manifest = weights / "manifest"
    manifest.write_text("# name  sha256  size_bytes  url  licence\n"
                        "phototag-cpu.safetensors  " + "0" * 64 + "  1  -  non-commercial\n")
    candidate = tmp_path / "candidate.safetensors"
    candidate.write_bytes(b"trained weights stand-in")
    return manifest, candidate


def test_shipping_into_the_manifest_folder_rewrites_its_line(tmp_path):
    manifest, candidate = folder_with_manifest(tmp_path)
    shipped = manifest.parent / "phototag-cpu.safetensors"
    load_promote().ship(candidate, shipped, manifest)
    assert shipped.read_bytes() == candidate.read_bytes()
    fields = manifest.read_text().splitlines()[1].split()
    assert fields[:3] == ["phototag-cpu.safetensors", hashlib.sha256(candidate.read_bytes()).hexdigest(),
                          str(candidate.stat().st_size)]
    assert manifest.read_text().splitlines()[0].startswith("# name")


def test_shipping_to_a_copy_elsewhere_leaves_the_manifest_alone(tmp_path):
    manifest, candidate = folder_with_manifest(tmp_path)
    before = manifest.read_text()
    elsewhere = tmp_path / "experiment"
    elsewhere.mkdir()
    shipped = elsewhere / "phototag-cpu.safetensors"  # the same name, another folder
    load_promote().ship(candidate, shipped, manifest)
    assert shipped.read_bytes() == candidate.read_bytes()
    assert manifest.read_text() == before
