"""The SLO rule compiler: spec files in, Prometheus rules and promtool tests out.

Specs (Sloth ``prometheus/v1`` and its CRD, OpenSLO v1, Pyrra) are read into one model
(``spec``, ``openslo``, ``openslo_sli``, ``pyrra``, ``documents``, ``load``), resolved
against alert windows kept as data files (``windows``, ``windows/``; other periods get
Pyrra's scaled windows, ``scaled_windows``) with Sloth's contrib plugins applied
(``plugins``, ``resolve``), turned into Sloth's recording and alerting rules (``rules``,
``promql``) and written as YAML text (``render``) together with promtool unit tests
(``promtool_tests``); ``generate`` is the entry point and ``errors`` names file, line, SLO
and field of every problem.

It is pure, so the command line, the review check, the SLO pages and the local Prometheus
all get the same rules from the same text: no I/O beyond reading the spec and windows files
it is given (and ``generate.write_outputs`` writing into the folder it is given), no clock,
no network, and it imports nothing else of the portal but the YAML reader
(``portal.yaml_source``), itself a leaf. ``make lint`` (import-linter) holds it to that.
"""
