"""``slurm-escalate report``: what a chain did, what it cost, how to size the next one.

``stats.build_report`` turns a Chain into a typed ReportData (pure); the
renderers ``markdown``, ``html`` (one self-contained file), ``jsonout``
(documented in docs/report-json.md) and ``sqlite`` only read that.
``logs`` reads task logs; loading chains for a report is the service's
(service/collect.py). Nothing is imported here: the monitor uses only ``summary``
and ``eta``, and should not load the renderers.
"""
