"""What the field's own test suites rehearse, held against what this lab can say.

`peer-suites.yaml` lists the situations of LINBIT's drbd9-tests, the lvm2 test suite,
Pacemaker's CTS and Jepsen's nemeses that fit a two-node DRBD 8.4 + LVM + overlay lab
(and, as out of scope, those that do not). Each is covered by shipped drills and the
scenario that runs them, or names the vocabulary the lab still lacks. The backends a
covered situation can run on are derived from its drills and the backends' declared
limits, never written by hand; `stackdrill coverage` prints the table.
"""

from stackdrill.coverage.model import Catalogue, Situation, Status, Suite, load_catalogue
from stackdrill.coverage.table import CoverageRow, coverage_rows, markdown_table, summary

__all__ = ["Catalogue", "CoverageRow", "Situation", "Status", "Suite", "coverage_rows",
           "load_catalogue", "markdown_table", "summary"]
