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
