import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from portal.integrations import copier as copier_integration
from portal.integrations.copier import (
    CopierRenderer,
    FakeRenderer,
    RenderError,
    RenderResult,
    RenderTimeoutError,
    render,
)
from portal.integrations.copier_jinja import (
    JinjaSyntax,
    TemplateCodeError,
    check_syntax,
    evaluate,
)
from tests.integrations.copier_support import COPIER_YML, make_repo


@pytest.fixture(scope="module", autouse=True)
def _stop_workers() -> Iterator[None]:
    yield
    copier_integration.shutdown()


@pytest.fixture(scope="module")
def template_src(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_repo(tmp_path_factory.mktemp("templates") / "tiny")


def test_render_in_a_worker_records_the_template_commit(template_src: str, tmp_path: Path) -> None:
    cwd = os.getcwd()
    result = render(template_src, "v1.0.0", {"name": "shop"}, tmp_path / "shop")
    assert os.getcwd() == cwd  # Copier's chdir happened elsewhere
    assert result.files == (".copier-answers.yml", "README.md", "deploy/shop.yaml")
    assert result.template_commit == "v1.0.0"
    assert result.warnings == ()
    assert (tmp_path / "shop" / "README.md").read_text() == "hello from shop\n"
    recorded = yaml.safe_load((tmp_path / "shop" / ".copier-answers.yml").read_text())
    assert recorded == {
        "_commit": "v1.0.0",
        "_src_path": template_src,
        "greeting": "hello",
        "name": "shop",
    }


def test_copier_errors_become_render_errors(template_src: str, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="must be lower case") as caught:
        render(template_src, "v1.0.0", {"name": "Shop"}, tmp_path / "shop")
    assert "Copier failed to render" in str(caught.value)
    assert not (tmp_path / "shop").exists()


def test_an_unknown_ref_is_a_render_error(template_src: str, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"v9\.9\.9"):
        render(template_src, "v9.9.9", {"name": "shop"}, tmp_path / "shop")
    assert not (tmp_path / "shop").exists()


def test_the_destination_must_be_empty(template_src: str, tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "keep.txt").write_text("mine")
    with pytest.raises(RenderError, match="not empty"):
        render(template_src, "v1.0.0", {"name": "shop"}, tmp_path / "shop")
    assert (tmp_path / "shop" / "keep.txt").read_text() == "mine"


def test_an_empty_existing_destination_is_emptied_again_on_error(
    template_src: str, tmp_path: Path
) -> None:
    (tmp_path / "shop").mkdir()
    with pytest.raises(RenderError):
        render(template_src, "v1.0.0", {"name": "Shop"}, tmp_path / "shop")
    assert list((tmp_path / "shop").iterdir()) == []


def test_a_timeout_stops_the_worker_and_the_pool_recovers(
    template_src: str, tmp_path: Path
) -> None:
    copier_integration.shutdown()  # a fresh worker has not even imported Copier yet
    with pytest.raises(RenderTimeoutError, match="more than"):
        render(template_src, "v1.0.0", {"name": "slow"}, tmp_path / "slow", timeout=0.01)
    assert not (tmp_path / "slow").exists()
    result = render(template_src, "v1.0.0", {"name": "shop"}, tmp_path / "shop")
    assert "README.md" in result.files


def test_renders_from_several_threads(template_src: str, tmp_path: Path) -> None:
    results: dict[str, RenderResult] = {}

    def one(name: str) -> None:
        results[name] = render(template_src, "v1.0.0", {"name": name}, tmp_path / name)

    threads = [threading.Thread(target=one, args=(f"svc-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [f"svc-{i}" for i in range(4)]
    for name, result in results.items():
        assert f"deploy/{name}.yaml" in result.files
        assert (tmp_path / name / "README.md").read_text() == f"hello from {name}\n"


def test_user_settings_cannot_trust_a_template_with_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "task-ran"
    src = make_repo(tmp_path / "tasky", COPIER_YML + f"_tasks: ['touch {marker}']\n")
    settings = tmp_path / "settings.yml"
    settings.write_text(f"trust: ['{src}', '/']\n")
    copier_integration.shutdown()
    monkeypatch.setenv("COPIER_SETTINGS_PATH", str(settings))
    try:
        with pytest.raises(RenderError, match="UnsafeTemplateError"):
            render(src, "v1.0.0", {"name": "shop"}, tmp_path / "shop")
    finally:
        copier_integration.shutdown()  # the next workers start without the variable
    assert not marker.exists()


def test_workers_do_not_see_the_portals_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leak = {"template/leak.txt.jinja": "{{ '[$PORTAL_SECRET_KEY][$HOME]' | expandvars }}"}
    src = make_repo(tmp_path / "leaky", extra=leak)
    copier_integration.shutdown()
    monkeypatch.setenv("PORTAL_SECRET_KEY", "s3cret")
    try:
        render(src, "v1.0.0", {"name": "shop"}, tmp_path / "shop")
    finally:
        copier_integration.shutdown()
    leaked = (tmp_path / "shop" / "leak.txt").read_text()
    assert leaked == f"[$PORTAL_SECRET_KEY][{os.environ['HOME']}]"


def test_a_template_from_a_git_url_renders_with_a_private_cache(
    template_src: str, tmp_path: Path
) -> None:
    url = f"git+file://{template_src}"  # a remote URL, marked as git for Copier
    renderer = CopierRenderer(cache_dir=tmp_path / "cache")
    result = renderer.render(url, "v1.0.0", {"name": "shop"}, tmp_path / "shop")
    recorded = yaml.safe_load((tmp_path / "shop" / ".copier-answers.yml").read_text())
    assert recorded["_src_path"] == url and result.template_commit == "v1.0.0"
    assert any((tmp_path / "cache").iterdir())  # mirrored there, not in the user's cache


def test_fake_renderer_writes_files_and_records_calls(tmp_path: Path) -> None:
    fake = FakeRenderer({"README.md": "# $name\n", "deploy/x.yaml": "owner: $owner\n"})
    result = fake.render("tpl", "v2.0.0", {"name": "shop", "owner": "team"}, tmp_path / "s")
    assert result.files == (".copier-answers.yml", "README.md", "deploy/x.yaml")
    assert (tmp_path / "s" / "deploy" / "x.yaml").read_text() == "owner: team\n"
    assert fake.calls == [("tpl", "v2.0.0", {"name": "shop", "owner": "team"}, tmp_path / "s")]
    recorded = yaml.safe_load((tmp_path / "s" / ".copier-answers.yml").read_text())
    assert recorded["_src_path"] == "tpl" and recorded["_commit"] == "v0.0.0"
    with pytest.raises(RenderError, match="boom"):
        FakeRenderer(error="boom").render("tpl", "v1", {}, tmp_path / "t")


def test_evaluate_is_sandboxed() -> None:
    assert evaluate("{{ a + 1 }}", {"a": 1}) == "2"
    with pytest.raises(TemplateCodeError, match="unsafe"):
        evaluate("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
    with pytest.raises(TemplateCodeError, match="fileglob"):
        evaluate("{{ '/etc/*' | fileglob }}", {})


def test_custom_delimiters_from_envops() -> None:
    syntax = JinjaSyntax.from_envops({"variable_start_string": "[[", "variable_end_string": "]]"})
    assert evaluate("[[ x ]] {{ x }}", {"x": 1}, syntax) == "1 {{ x }}"
    assert syntax.has_markers("[[ x") and syntax.has_markers("{{ x")
    with pytest.raises(ValueError, match="non-empty text"):
        JinjaSyntax.from_envops({"block_start_string": ""})


def test_check_syntax_reports_the_line() -> None:
    check_syntax("{% if a %}ok{% endif %}")
    with pytest.raises(TemplateCodeError, match="line 2"):
        check_syntax("fine\n{% if a %}")
