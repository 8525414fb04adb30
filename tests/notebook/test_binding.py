"""The notebook's conversation and its archives: nothing is lost when ids collide."""

from __future__ import annotations

from codetether_magics.messages import Message
from codetether_magics.notebook.binding import _archive
from codetether_magics.session.session import Session


async def test_a_notebook_archive_under_a_taken_id_is_kept_under_a_new_one(tmp_path, isolated_environment):
    first = await Session.new(str(tmp_path))
    first.add_message(Message.user("copy one"))
    second = first.model_copy(deep=True)
    second.messages = [Message.user("copy two")]
    assert await _archive(first) == first.id
    kept = await _archive(second)
    assert kept != first.id
    assert (await Session.load(first.id)).messages[0].text == "copy one"
    assert (await Session.load(kept)).messages[0].text == "copy two"
