"""Multi-agent orchestrations, each an ordinary `Workflow` that checkpoints and resets.

Module map:

* `_common`: the conversation on the wire, `AgentStep`, `Start`, reviews, `Progress` events
* `_sequential`: `sequential()` (a chain)
* `_concurrent`: `concurrent()` (every agent at once, as the items of a map; aggregate)
* `_handoff`: `handoff()` (agents hand the conversation over with tools)
* `_group_chat`: `group_chat()` (a manager picks the next speaker)
* `_magentic`: `magentic()` (task and progress ledgers, stalls, re-planning)
"""

from ._common import (
    AgentStep,
    Conversation,
    Participant,
    Progress,
    Review,
    ReviewRequest,
    Start,
    Termination,
    as_step,
    last_text,
)
from ._concurrent import concurrent
from ._group_chat import GroupChatState, group_chat, parse_choice
from ._handoff import Handoff, UserInputRequest, handoff
from ._magentic import MagenticTask, PlanReview, PlanReviewRequest, ProgressLedger, magentic
from ._sequential import sequential

__all__ = [
    "AgentStep",
    "Conversation",
    "GroupChatState",
    "Handoff",
    "MagenticTask",
    "Participant",
    "PlanReview",
    "PlanReviewRequest",
    "Progress",
    "ProgressLedger",
    "Review",
    "ReviewRequest",
    "Start",
    "Termination",
    "UserInputRequest",
    "as_step",
    "concurrent",
    "group_chat",
    "handoff",
    "last_text",
    "magentic",
    "parse_choice",
    "sequential",
]
