"""The README's tour, pasted as a newcomer pastes it: its shell blocks, top to bottom, in one
bash, against the binary under test. A tour that drifts from herald (a flag, a field, a race
between starting something and using it) fails here rather than in a newcomer's terminal."""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess

from test_delivery import HERALD

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
BUILD = "cargo build --release && export PATH=$PWD/target/release:$PATH"


def tour():
    """The shell blocks of the README's section "A tour", joined."""
    section = README.read_text().split("\n## A tour\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_readme_tour_runs_as_pasted(tmp_path):
    busy = [port for port in (8000, 9000) if listening(port)]
    assert not busy, f"the tour needs ports 8000 and 9000; {busy} in use"
    script = tour()
    assert BUILD in script, "the tour builds and puts herald on the PATH as this test expects"
    script = script.replace(BUILD, f"export PATH={os.path.dirname(os.path.abspath(HERALD))}:$PATH")
    # Then what a newcomer looks at: the delivery log. And stop what the tour started.
    script += """
sleep 1
curl -s "$API/tenants/acme/deliveries?limit=50" -H "$AUTH" > deliveries.json
kill $HERALD_PID $RECEIVER_PID
wait
"""
    run = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = run.communicate(timeout=120)
    finally:
        # Whatever happened, nothing the tour started outlives the test.
        try:
            os.killpg(run.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    log = (tmp_path / "deliveries.json").read_text()
    deliveries = json.loads(log)["data"]
    assert len(deliveries) >= 2, (log, err[-2000:])
    # Each delivered at its first attempt: the receiver was listening before the first event.
    assert [(d["state"], d["attempt_count"]) for d in deliveries] == \
        [("succeeded", 1)] * len(deliveries), log
    assert "webhook-signature" in out.lower(), "the receiver printed a signed request"
    assert '"status":422' in out, "the payload that does not match its schema is refused"
    assert '"new-subscription"' in out and '"webhooks"' in out, "the documents were printed"
