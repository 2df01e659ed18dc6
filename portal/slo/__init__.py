"""SLOs as code: Sloth-compatible specs in, multiwindow multi-burn-rate Prometheus rules out.

Specs (Sloth ``prometheus/v1`` and its CRD, OpenSLO v1, Pyrra) are read into one model
(``spec``, ``load``), resolved against alert windows kept as data files (``windows``) and
turned into Sloth's recording and alerting rules (``rules``), written as YAML text
(``render``) together with promtool unit tests (``promtool_tests``).
"""
