"""What a bus raises to its subscriber (apart from ``StoreUnavailable``)."""

from __future__ import annotations


class ForeignEntry(Exception):
    """The bus carried an entry of another log (another cluster id, or none).

    Not a ``HiveError``: it never reaches a client. The follower that meets it
    stops reading the bus and follows the store (see ``HubService._follow_bus``)."""

    def __init__(self, where: str, expected: str, found: str | None) -> None:
        self.where, self.expected, self.found = where, expected, found
        super().__init__(
            f"{where} carries an entry of cluster {found!r}, not of this cluster {expected!r}: "
            "two deployments share one bus stream; refusing to fold it"
        )
