"""The HTML report (``weightscape report``): one self-contained page per output folder."""

from weightscape.report.html.page import render_report, write_report

__all__ = ["render_report", "write_report"]
