"""improv.portclose: closes on JACK wait for the graph to settle, and take turns."""

import threading
import types

import mido
import mido.backends.rtmidi
import pytest
import rtmidi

from improv import portclose


class FakeRt:
    """A python-rtmidi object stand-in that logs its calls."""

    def __init__(self, log: list, api: int = rtmidi.API_UNIX_JACK, name: str = "port"):
        self.log, self.api, self.name = log, api, name
        self.is_deleted = False

    def get_current_api(self) -> int:
        assert not self.is_deleted, "a freed python-rtmidi object was used"
        return self.api

    def close_port(self) -> None:
        assert not self.is_deleted, "a freed python-rtmidi object was used"
        self.log.append(("close_port", self.name))

    def delete(self) -> None:
        assert not self.is_deleted, "a freed python-rtmidi object was freed again"
        self.log.append(("delete", self.name))
        self.is_deleted = True

    def send_message(self, message) -> None:
        self.log.append(("send", tuple(message)))


class FakeIn(FakeRt):
    def cancel_callback(self) -> None:
        self.log.append(("cancel_callback", self.name))


@pytest.fixture
def log(monkeypatch):
    log: list = []
    monkeypatch.setattr(portclose, "time",
                        types.SimpleNamespace(sleep=lambda s: log.append(("sleep", s))))
    return log


def test_a_jack_port_is_closed_after_the_settle_and_freed(log):
    portclose.close_rtmidi(FakeRt(log))
    assert log == [("sleep", portclose.SETTLE), ("close_port", "port"), ("delete", "port")]


def test_a_port_of_another_api_is_closed_at_once(log):
    portclose.close_rtmidi(FakeRt(log, api=rtmidi.API_LINUX_ALSA))
    assert log == [("close_port", "port"), ("delete", "port")]


def test_a_freed_port_is_left_alone(log):
    rt = FakeRt(log)
    rt.delete()
    portclose.close_rtmidi(rt)  # (asking a freed object its API would crash python-rtmidi)
    assert log == [("delete", "port")]


def test_a_spaced_mido_output_sends_through_its_object_and_closes_after_the_settle(log):
    rt = FakeRt(log)
    port = object.__new__(mido.backends.rtmidi.Output)  # mido's own send and close
    port.name, port.closed, port._lock = "port", False, threading.RLock()
    port._send_lock = threading.RLock()
    port._rt = rt
    assert portclose.spaced(portclose.spaced(port)) is port
    assert isinstance(port._rt, portclose.SpacedRtMidi) and port._rt.target is rt  # once
    port.send(mido.Message("note_on", note=60, velocity=64))
    assert port._rt.get_current_api() == rtmidi.API_UNIX_JACK  # the rest is the object's
    port.close()  # close_port, then mido's delete finds it freed
    assert port.closed
    assert log == [("send", (0x90, 60, 64)), ("sleep", portclose.SETTLE),
                   ("close_port", "port"), ("delete", "port")]


def test_an_input_with_a_callback_is_closed_after_the_settle(log):
    from improv.ports import close_input

    port = portclose.spaced(types.SimpleNamespace(_rt=FakeIn(log), closed=False))
    close_input(port, settle=0.0)
    assert port.closed
    assert log == [("cancel_callback", "port"), ("cancel_callback", "port"),
                   ("sleep", portclose.SETTLE), ("close_port", "port"), ("delete", "port")]


def test_an_input_is_called_back_no_more_before_the_settle(log):
    portclose.close_rtmidi(FakeIn(log))
    assert log == [("cancel_callback", "port"), ("sleep", portclose.SETTLE),
                   ("close_port", "port"), ("delete", "port")]


def test_closes_from_two_threads_take_turns(monkeypatch):
    monkeypatch.setattr(portclose, "SETTLE", 0.0)
    inside, second_came_in, overlapped = threading.Event(), threading.Event(), []

    class Slow(FakeRt):
        def close_port(self) -> None:
            if self.name == "first":
                inside.set()
                # with turns, the second close cannot come in while this one is here
                overlapped.append(second_came_in.wait(0.5))
            else:
                second_came_in.set()

    first = threading.Thread(target=portclose.close_rtmidi, args=(Slow([], name="first"),))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=portclose.close_rtmidi, args=(Slow([], name="second"),))
    second.start()
    first.join(10)
    second.join(10)
    assert overlapped == [False] and second_came_in.is_set()
