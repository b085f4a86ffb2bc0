"""argocd_tree's model of Argo CD's kustomize options: `images` as `kustomize edit set image`
writes them, on a copy of the source folder, with `patches` appended after.

The `set_images` cases are those of kustomize's own kustomize/commands/edit/set/setimage_test.go
that decide whether an override keeps the digest a release pinned.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).parent))
import argocd_tree

DIGEST = "sha256:" + "ab" * 32
REGISTRY = "444455556666.dkr.ecr.eu-central-1.amazonaws.com"


@pytest.mark.parametrize(
    ("existing", "arguments", "expected"),
    [
        pytest.param(
            [{"name": "churn-api", "digest": DIGEST}],
            [f"churn-api={REGISTRY}/churn-api"],
            [{"name": "churn-api", "newName": f"{REGISTRY}/churn-api"}],
            id="a new name alone drops the digest",
        ),
        pytest.param(
            [{"name": "churn-api", "digest": DIGEST}],
            [f"churn-api={REGISTRY}/churn-api@*"],
            [{"name": "churn-api", "newName": f"{REGISTRY}/churn-api", "digest": DIGEST}],
            id="a new name with @* keeps the digest",
        ),
        pytest.param(
            [{"name": "image1", "newName": "foo.bar.foo:8800/foo/image1", "newTag": "my-tag"}],
            ["image1=*:v1"],
            [{"name": "image1", "newName": "foo.bar.foo:8800/foo/image1", "newTag": "v1"}],
            id="override new tag but keep new name",
        ),
        pytest.param(
            [],
            ["image1=my-image1:*"],
            [{"name": "image1", "newName": "my-image1"}],
            id="do not set asterisk as new tag",
        ),
        pytest.param(
            [{"name": "busybox", "newTag": "1.36"}],
            [f"churn-api={REGISTRY}/churn-api@*"],
            [
                {"name": "busybox", "newTag": "1.36"},
                {"name": "churn-api", "newName": f"{REGISTRY}/churn-api"},
            ],
            id="an entry no argument names stays",
        ),
    ],
)
def test_set_images_follows_kustomize_edit_set_image(
    existing: list[dict[str, Any]], arguments: list[str], expected: list[dict[str, Any]]
) -> None:
    assert argocd_tree.set_images(existing, arguments) == expected


def test_an_image_argument_that_sets_nothing_is_refused() -> None:
    with pytest.raises(argocd_tree.TemplateError, match="sets nothing"):
        argocd_tree.set_images([], ["churn-api"])


def _tree(root: Path) -> Path:
    """A checkout-shaped folder: an overlay naming a base two levels up, pinning a digest."""
    (root / "clusters").mkdir()
    base = root / "platform" / "apps" / "x" / "base"
    overlay = root / "platform" / "apps" / "x" / "overlays" / "dev"
    base.mkdir(parents=True)
    overlay.mkdir(parents=True)
    (base / "kustomization.yaml").write_text("resources: [pod.yaml]\n", encoding="utf-8")
    (base / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n"
        "spec:\n  containers:\n    - name: x\n      image: churn-api\n",
        encoding="utf-8",
    )
    (overlay / "kustomization.yaml").write_text(
        f"resources: [../../base]\nimages:\n  - name: churn-api\n    digest: {DIGEST}\n",
        encoding="utf-8",
    )
    return overlay


@pytest.mark.parametrize(
    ("override", "image"),
    [
        (f"churn-api={REGISTRY}/churn-api@*", f"{REGISTRY}/churn-api@{DIGEST}"),
        (f"churn-api={REGISTRY}/churn-api", f"{REGISTRY}/churn-api"),
    ],
)
def test_a_source_renders_with_the_override_on_its_own_kustomization(
    tmp_path: Path, override: str, image: str
) -> None:
    overlay = _tree(tmp_path)
    before = (overlay / "kustomization.yaml").read_text(encoding="utf-8")
    patch = {
        "target": {"kind": "Pod", "name": "x"},
        "patch": "- {op: add, path: /metadata/labels, value: {patched: 'yes'}}",
    }
    (pod,) = argocd_tree.kustomize(overlay, [patch], [override])
    assert pod["spec"]["containers"][0]["image"] == image
    assert pod["metadata"]["labels"] == {"patched": "yes"}
    assert (overlay / "kustomization.yaml").read_text(encoding="utf-8") == before, (
        "the checkout is never edited"
    )


def test_an_option_the_model_does_not_apply_is_refused() -> None:
    source = argocd_tree.AppSource(
        {"path": "platform/apps/churn-api/overlays/dev", "kustomize": {"namePrefix": "x-"}}
    )
    with pytest.raises(argocd_tree.TemplateError, match="namePrefix"):
        argocd_tree.render_source(source)


def test_the_command_line_prints_what_the_environments_application_syncs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert argocd_tree.main(["render", "prod", "platform/apps/churn-api/overlays/prod"]) == 0
    facts = argocd_tree.cluster_params("prod")["metadata"]["annotations"]
    assert f"image: {facts['aws_account_id']}.dkr.ecr." in capsys.readouterr().out
    assert argocd_tree.main(["render", "prod", "platform/apps/no-such-app"]) == 2
    assert "no-such-app" in capsys.readouterr().err
