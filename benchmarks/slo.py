"""SLO rule generation benchmark (issue 5): 1,000 SLOs, specs in, rule files out.

Run ``.venv/bin/python benchmarks/slo.py [--services 100 --slos-per-service 10 --runs 7]``.
The specs are Sloth ``prometheus/v1`` texts in memory (one per service, like ``slo.yaml``
files), alternating events and raw SLIs, with labels, page and ticket alerts. Timed, each as
the median of the runs:

- parse + validate + resolve: YAML to resolved SLOs (``resolve_sources``),
- generate: resolved SLOs to rule file texts (``render_outputs``, the direct YAML writer),
- end to end: both (what ``portal slo generate`` does, minus reading and writing files),
- the same with a promtool unit test file per SLO (``--tests``),
- for comparison: PyYAML's C dumper (``yaml.dump(..., Dumper=CSafeDumper)``) writing the same
  rule documents (as parsed back from our output): what a YAML library would cost.

The target is end to end under 1 s for 1,000 SLOs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from portal.slo.compiler.generate import GenerateOptions, render_outputs, resolve_sources

# Run as a script (`python benchmarks/slo.py`): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.timing import machine

TARGET_S = 1.0


def service_spec(service: int, slos: int) -> str:
    """One service's spec with ``slos`` SLOs (events and raw SLIs in turn)."""
    name = f"service-{service:03d}"
    lines = [
        'version: "prometheus/v1"',
        f'service: "{name}"',
        "labels:",
        f'  owner: "team-{service % 17:02d}"',
        '  tier: "2"',
        "slos:",
    ]
    for index in range(slos):
        route = f"/api/v1/resource-{index}"
        selector = f'job="{name}",route="{route}"'
        lines += [
            f'  - name: "route-{index}-availability"',
            f"    objective: {(99.0, 99.5, 99.9, 99.95, 99.99)[index % 5]}",
            f'    description: "Availability of {route}."',
            "    labels:",
            "      category: availability",
            "    sli:",
        ]
        if index % 2 == 0:
            lines += [
                "      events:",
                f'        error_query: sum(rate(http_requests_total{{{selector},code=~"5.."}}'
                "[{{.window}}]))",
                f"        total_query: sum(rate(http_requests_total{{{selector}}}"
                "[{{.window}}]))",
            ]
        else:
            lines += [
                "      raw:",
                "        error_ratio_query: |",
                f"          sum(rate(http_request_errors_total{{{selector}}}[{{{{.window}}}}]))",
                "          /",
                f"          sum(rate(http_requests_total{{{selector}}}[{{{{.window}}}}]))",
            ]
        lines += [
            "    alerting:",
            f"      name: Route{index}HighErrorRate",
            "      labels:",
            "        category: availability",
            "      annotations:",
            f'        summary: "{route} of {name} answers too many errors."',
            "      page_alert:",
            "        labels:",
            "          severity: page",
            "      ticket_alert:",
            "        labels:",
            "          severity: ticket",
        ]
    return "\n".join(lines) + "\n"


def median_time(runs: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Median wall time of ``runs`` calls (after one warm-up call) and the last result."""
    result = work()
    samples = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = work()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--slos-per-service", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)

    sources = {
        f"service-{index:03d}/slo.yaml": service_spec(index, args.slos_per_service)
        for index in range(args.services)
    }
    total_slos = args.services * args.slos_per_service
    plain, with_tests = GenerateOptions(), GenerateOptions(tests=True)

    parse_s, slos = median_time(args.runs, lambda: resolve_sources(sources, plain))
    render_s, outputs = median_time(args.runs, lambda: render_outputs(slos, plain))
    total_s, _ = median_time(
        args.runs, lambda: render_outputs(resolve_sources(sources, plain), plain)
    )
    tests_s, test_outputs = median_time(
        args.runs, lambda: render_outputs(resolve_sources(sources, with_tests), with_tests)
    )
    documents = [yaml.load(output.text, Loader=yaml.CSafeLoader) for output in outputs]
    dump_s, _ = median_time(
        max(1, args.runs // 3),
        lambda: [yaml.dump(d, Dumper=yaml.CSafeDumper, sort_keys=False) for d in documents],
    )

    rules = sum(len(group["rules"]) for d in documents for group in d["groups"])
    size = sum(len(output.text) for output in outputs)
    test_files = sum(output.kind == "test" for output in test_outputs)
    libyaml = "yes" if yaml.__with_libyaml__ else "no"
    print(f"machine: {machine(f'PyYAML {yaml.__version__} (libyaml {libyaml})')}")
    print(
        f"input:   {total_slos} SLOs in {args.services} services "
        f"({sum(len(t) for t in sources.values()) / 1e6:.2f} MB of spec YAML)"
    )
    print(
        f"output:  {len(outputs)} rule files, {rules} rules, {size / 1e6:.2f} MB; "
        f"with --tests {test_files} more files"
    )
    print(f"runs:    median of {args.runs} (after a warm-up run)")
    print()
    rows = [
        ("parse + validate + resolve", parse_s, ""),
        ("generate rule texts (direct YAML writer)", render_s, ""),
        ("end to end (specs in, rule files out)", total_s, f"< {TARGET_S:g} s"),
        ("end to end with promtool tests", tests_s, ""),
        ("PyYAML CSafeDumper on the same rules", dump_s, "comparison"),
    ]
    width = max(len(name) for name, _, _ in rows)
    for name, seconds, target in rows:
        verdict = ""
        if target.startswith("<"):
            verdict = "PASS" if seconds < TARGET_S else "FAIL"
        print(f"{name.ljust(width)}  {seconds * 1000:8.1f} ms  {target:11} {verdict}".rstrip())
    return 0 if total_s < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
