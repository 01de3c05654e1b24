"""Model families by name (``family:`` in the training config): one file, one line each."""

from __future__ import annotations

from fusionaudio.clap.families.offline import OfflineClap
from fusionaudio.clap.families.paper import PaperClap
from fusionaudio.clap.model import DualEncoder

FAMILIES: dict[str, type[DualEncoder]] = {
    "offline": OfflineClap,
    "paper": PaperClap,
}
