"""``improv ports``: list MIDI inputs and outputs."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("ports", help="list MIDI inputs and outputs",
                       description="List the MIDI ports the back-end sees, with their indexes.")
    p.add_argument("--api", choices=("alsa", "jack", "coremidi", "winmm"),
                   help="MIDI back-end (default: $MIDO_BACKEND, else ALSA, else JACK)")


def command(args) -> int:
    from improv.ports import api_name, get_backend, list_ports

    backend = get_backend(args.api)
    ports = list_ports(backend)
    print(f"MIDI back-end: {api_name(backend)}")
    for kind in ("inputs", "outputs"):
        print(f"{kind}:")
        for i, name in enumerate(ports[kind]):
            print(f"  {i}: {name}")
        if not ports[kind]:
            print("  (none)")
    return 0
