"""What a client's action message may carry, type-checked before services.submit_action sees it:
the same fields arrive as a websocket frame (consumers) or an API POST body (views).
Pure module (no Django)."""

from .protocol import Refused


def action_fields(message: dict) -> dict:
    """The fields a client may send with an action, type-checked."""
    text = message.get("text", message.get("comment", ""))
    if not isinstance(text, str):
        raise Refused("bad_message", "text must be a string")
    note = message.get("private_note", "")
    if not isinstance(note, str):
        raise Refused("bad_message", "private_note must be a string")
    client_id = message.get("client_id", "")
    if not isinstance(client_id, str):
        raise Refused("bad_message", "client_id must be a string")
    seat = message.get("seat")
    if seat is not None and not isinstance(seat, str):
        raise Refused("bad_message", "seat must be a string")
    reveal = message.get("reveal")
    if reveal is not None and (isinstance(reveal, bool) or not isinstance(reveal, int)):
        raise Refused("bad_message", "reveal must be a pixel number (row * 28 + column)")
    fields = {
        "text": text,
        "private_note": note,
        "seat": seat,
        "reveal": reveal,
        "rectangles": message.get("rectangles"),
    }
    if message["type"] == "feedback":
        fields["probabilities"] = message.get("probabilities")
        fields["end_debate"] = message.get("end_debate") is True
    return fields
