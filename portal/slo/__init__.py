"""SLOs as code: Sloth-compatible specs in, multiwindow multi-burn-rate Prometheus rules out.

The pure rule compiler is the ``compiler`` sub-package. Around it: the SLO index of the SLOs
the portal knows (``store``), the review check (``review``), the rules served to Prometheus and
the local one (``runtime``, ``local``), the burn-rate, budget and chart pages (``burn``,
``budget``, ``overview``, ``detail``, ``charts``, ``present``, ``preview``, ``routes``,
``api``) and the command line (``cli``).
"""
