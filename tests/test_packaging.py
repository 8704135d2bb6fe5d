"""What `pip install .` puts in site-packages: every package of the source tree."""

import configparser

from conftest import ROOT


def test_every_package_of_the_tree_is_installed():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    in_tree = {".".join(init.parent.relative_to(ROOT).parts)
               for init in (ROOT / "phototag").rglob("__init__.py")}
    assert in_tree <= listed, f"setup.cfg [options] packages lacks {sorted(in_tree - listed)}"


def test_only_the_manifest_and_the_weights_ship_from_weights():
    """weights/ is installed as a package (phototag.shipped_weights): a Python file in it would
    be installed too, so the training scripts live in weights/scripts/, which is not one."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["options.package_data"]["phototag.shipped_weights"].split(", ") == [
        "manifest", "*.safetensors"]
    assert not list((ROOT / "weights").glob("*.py"))
    assert not (ROOT / "weights" / "scripts" / "__init__.py").exists()
