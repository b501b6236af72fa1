"""Customer segments and the rules that place each user in exactly one of them.

A user's tenure is the days from signup to the reference date; their activity position is where their
popularity ranks among all users, in basis points (0 = the most active, 9999 = the least). The segments are
tried by priority and the first whose bounds all hold wins (a lower bound is inclusive, an upper one exclusive);
the last has no bound, so every user lands somewhere.
"""

from __future__ import annotations

from app.reference.rows import CustomerSegmentRow

SEGMENTS: tuple[CustomerSegmentRow, ...] = (
    CustomerSegmentRow(
        1, "vip", "VIP", "The 2% most active customers, with us for at least a year.", 1, 365, None, 0, 200
    ),
    CustomerSegmentRow(2, "new", "New", "Signed up in the last 90 days.", 2, None, 90, None, None),
    CustomerSegmentRow(
        3, "loyal", "Loyal", "With us for two years or more and among the 30% most active.", 3, 730, None, 0, 3000
    ),
    CustomerSegmentRow(
        4, "occasional", "Occasional", "The less active half of the customers.", 4, None, None, 5000, None
    ),
    CustomerSegmentRow(5, "regular", "Regular", "Everyone no other segment takes.", 5, None, None, None, None),
)


def activity_bp(rank: int, count: int) -> int:
    """The activity position in basis points of the user ranked ``rank`` (1 = most active) of ``count``."""
    return (rank - 1) * 10_000 // count


def matches(segment: CustomerSegmentRow, tenure_days: int, position_bp: int) -> bool:
    """Whether the segment's rule takes a user of this tenure and activity position."""
    return (
        (segment.min_tenure_days is None or tenure_days >= segment.min_tenure_days)
        and (segment.max_tenure_days is None or tenure_days < segment.max_tenure_days)
        and (segment.min_activity_bp is None or position_bp >= segment.min_activity_bp)
        and (segment.max_activity_bp is None or position_bp < segment.max_activity_bp)
    )


def segment_for(tenure_days: int, position_bp: int, segments: tuple[CustomerSegmentRow, ...] = SEGMENTS) -> int:
    """The id of the first segment whose rule takes the user; ``segments`` are in priority order."""
    for segment in segments:
        if matches(segment, tenure_days, position_bp):
            return segment.segment_id
    msg = f"no segment takes a user of tenure {tenure_days} days and activity position {position_bp} bp"
    raise ValueError(msg)
