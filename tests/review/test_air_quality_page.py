"""The air-quality monitor's change page, scaffolded through the real pipeline: its initial
HTML stays under 200 KB because vendored, minified, large and generated files are collapsed."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, GRACE, runtime
from tests.review.test_pages import stored

# 172 KB at v0.3.0 of the template; v0.4.0 (the MLflow wiring: three pin files, more
# settings and README) puts its answer-shaped files on the page in about 202 KB.
PAGE_LIMIT = 220_000
SERVICE = "services/munich-air"


def test_the_air_quality_change_page_is_small_and_readable(portal: TestClient) -> None:
    body = {
        "template": "air-quality-monitor",
        "answers": {"name": "munich-air", "owner": "platform-team"},
    }
    created = portal.post("/api/scaffold", json=body, headers=ADA)
    assert created.status_code == 202, created.text
    assert run_pending(runtime(portal).context) == 1
    change_id = created.json()["id"]

    page = portal.get(f"/reviews/{change_id}", headers=GRACE)
    assert page.status_code == 200
    size = len(page.content)
    assert size < PAGE_LIMIT, f"the change page is {size:,} bytes"
    html = page.text
    version = stored(portal, change_id).template_version
    vendored = f"Vendored from template air-quality-monitor v{version}"
    htmx = re.search(
        rf'<span class="diff-path">{SERVICE}/app/static/htmx.min.js</span>.*?</section>', html
    )
    assert htmx, "htmx.min.js is not collapsed"
    assert f"{vendored} · minified · large." in htmx.group(0)
    assert re.search(r"[\d,]+ bytes, sha256 <code>[0-9a-f]{12}</code>", htmx.group(0))
    lock = re.search(rf"{SERVICE}/requirements.lock</span>.*?</section>", html)
    assert lock and "generated lock file" in lock.group(0)
    # What the answers shaped is on the page at once; nothing waits for the budget.
    for shown in ("slo.yaml", "deploy/base/deployment.yaml", ".copier-answers.yml"):
        assert f'<summary><span class="diff-path">{SERVICE}/{shown}</span>' in html
    assert "Shown on demand" not in html
    files = len(re.findall(r'class="diff-file[ "]', html))
    assert files == html.count('<a href="#file-') > 60  # the tree lists every file

    everything = portal.get(f"/reviews/{change_id}?expand=all", headers=GRACE)
    assert len(everything.content) > 5 * size  # what collapsing saves
    assert 'class="diff-file collapsed"' not in everything.text

    script = portal.get(
        f"/reviews/{change_id}/files/{SERVICE}/app/static/htmx.min.js",
        headers=GRACE | {"HX-Request": "true"},
    )
    assert script.status_code == 200 and "<tr><th>1</th><td>" in script.text
    assert '<span class="clipped" title="cut at 2,000 characters">…</span></td></tr>' in script.text
