"""The answers file records the template's canonical source, not the local repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from portal.integrations import copier as copier_integration
from portal.integrations.copier import FakeRenderer, RenderError, render
from portal.integrations.copier_answers import AnswersFileError, RecordedSource, record_source
from tests.integrations.copier_support import COPIER_YML, make_repo

URL = "https://portal.example.com/templates.git/tiny.git"
ANSWERS = """\
# Changes here will be overwritten by Copier; do not edit by hand.
_commit: v1.0.0
_src_path: /srv/portal/var/templates/tiny.git
greeting: hello
name: shop
"""


@pytest.fixture(scope="module", autouse=True)
def _stop_workers() -> Iterator[None]:
    yield
    copier_integration.shutdown()


def test_only_the_source_entry_changes_comments_and_order_stay(tmp_path: Path) -> None:
    path = tmp_path / ".copier-answers.yml"
    path.write_text(ANSWERS)

    assert record_source(path, RecordedSource(URL))

    assert path.read_text() == ANSWERS.replace("/srv/portal/var/templates/tiny.git", URL)
    assert not record_source(path, RecordedSource(URL))  # already recorded: untouched


def test_a_value_over_several_lines_is_replaced_whole_and_blank_lines_stay(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".copier-answers.yml"
    path.write_text("_commit: v1\n_src_path: /srv/portal/a\n    b.git\n\ngreeting: hello\n")

    record_source(path, RecordedSource(URL))

    assert path.read_text() == f"_commit: v1\n_src_path: {URL}\n\ngreeting: hello\n"


def test_an_entry_inside_a_flow_mapping_is_never_cut_out_of_it(tmp_path: Path) -> None:
    path = tmp_path / ".copier-answers.yml"
    path.write_text("{name: shop,\n_src_path: /srv/x.git}\n")

    record_source(path, RecordedSource(URL))

    assert yaml.safe_load(path.read_text()) == {"name": "shop", "_src_path": URL}


def test_a_commit_replaces_copiers_description_of_a_local_ref(tmp_path: Path) -> None:
    path = tmp_path / ".copier-answers.yml"
    path.write_text(ANSWERS.replace("v1.0.0", "pinned/" + "a" * 40))

    record_source(path, RecordedSource(URL, "a" * 40))

    recorded = yaml.safe_load(path.read_text())
    assert recorded == {"_commit": "a" * 40, "_src_path": URL, "greeting": "hello", "name": "shop"}


def test_a_value_that_needs_quoting_is_dumped_as_yaml_not_pasted(tmp_path: Path) -> None:
    path = tmp_path / ".copier-answers.yml"
    path.write_text(ANSWERS)
    url = "https://h/x.git # not a comment: 'quoted'"

    record_source(path, RecordedSource(url))

    assert yaml.safe_load(path.read_text())["_src_path"] == url
    assert path.read_text().startswith("# Changes here")


def test_an_answers_file_of_another_shape_is_dumped_whole_with_its_header(tmp_path: Path) -> None:
    path = tmp_path / ".copier-answers.yml"
    path.write_text("# header\n{name: shop, '_src_path': /tmp/x, _commit: v1}\n")

    record_source(path, RecordedSource(URL))

    text = path.read_text()
    assert text.startswith("# header\n") and "/tmp/x" not in text
    assert yaml.safe_load(text) == {"name": "shop", "_src_path": URL, "_commit": "v1"}


@pytest.mark.parametrize("text", ["[1, 2]\n", "a: [\n"])
def test_what_is_not_a_mapping_of_answers_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / ".copier-answers.yml"
    path.write_text(text)

    with pytest.raises(AnswersFileError, match=r"\.copier-answers\.yml"):
        record_source(path, RecordedSource(URL))
    assert path.read_text() == text


def test_a_render_from_git_records_the_url_and_keeps_the_tag(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "tiny")

    result = render(src, "v1.0.0", {"name": "shop"}, tmp_path / "shop", source=RecordedSource(URL))

    recorded = yaml.safe_load((tmp_path / "shop" / ".copier-answers.yml").read_text())
    assert recorded == {"_commit": "v1.0.0", "_src_path": URL, "greeting": "hello", "name": "shop"}
    assert result.template_commit == "v1.0.0" and not result.from_snapshot
    assert src not in (tmp_path / "shop" / ".copier-answers.yml").read_text()


def test_a_render_from_a_snapshot_records_the_url_too(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "tiny")
    source = RecordedSource(URL)

    result = render(
        src, "v1.0.0", {"name": "shop"}, tmp_path / "shop", snapshot_root=tmp_path / "snap"
    )
    again = render(
        src,
        "v1.0.0",
        {"name": "shop"},
        tmp_path / "again",
        snapshot_root=tmp_path / "snap",
        source=source,
    )

    assert result.from_snapshot and again.from_snapshot
    before = (tmp_path / "shop" / ".copier-answers.yml").read_text()
    after = (tmp_path / "again" / ".copier-answers.yml").read_text()
    assert after == before.replace(src, URL)  # one value changed, byte for byte


def test_an_answers_file_elsewhere_is_the_one_recorded(tmp_path: Path) -> None:
    copier_yml = COPIER_YML + "_answers_file: .meta/answers.yml\n"
    src = make_repo(
        tmp_path / "tiny",
        copier_yml,
        extra={"template/.meta/answers.yml.jinja": "{{ _copier_answers | to_nice_yaml }}"},
    )

    render(src, "v1.0.0", {"name": "shop"}, tmp_path / "shop", source=RecordedSource(URL))

    recorded = yaml.safe_load((tmp_path / "shop" / ".meta" / "answers.yml").read_text())
    assert recorded["_src_path"] == URL


def test_a_template_answers_file_that_is_not_yaml_fails_the_render(tmp_path: Path) -> None:
    src = make_repo(
        tmp_path / "tiny",
        extra={"template/{{ _copier_conf.answers_file }}.jinja": "a: [\n"},
    )

    with pytest.raises(RenderError, match=r"cannot record the template's source"):
        render(src, "v1.0.0", {"name": "shop"}, tmp_path / "shop", source=RecordedSource(URL))
    assert not (tmp_path / "shop").exists()


def test_the_fake_renderer_records_the_source_like_the_real_one(tmp_path: Path) -> None:
    FakeRenderer().render(
        "/data/tpl.git", "v1", {"name": "x"}, tmp_path / "s", source=RecordedSource(URL, "c0ffee")
    )

    recorded = yaml.safe_load((tmp_path / "s" / ".copier-answers.yml").read_text())
    assert (recorded["_src_path"], recorded["_commit"]) == (URL, "c0ffee")
