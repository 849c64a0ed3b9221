"""The command line client used as a user would: herald running, the client adding an endpoint,
sending, listing, replaying with progress and tailing deliveries."""

import os
import signal
import subprocess
import threading
import time
import urllib.request

from test_delivery import HERALD, PAYLOAD, TOKEN, Receiver, call, start_herald


def client(base, *args, stdin=None):
    env = dict(os.environ, HERALD_URL=base, HERALD_TOKEN=TOKEN, HERALD_TENANT="acme")
    return subprocess.run([HERALD, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_the_client_sends_lists_replays_and_tails(tmp_path):
    receiver = Receiver()
    process, base = start_herald(f"sqlite://{tmp_path}/herald.db")
    try:
        call(base, "POST", "/api/v1/tenants", {"id": "acme"})
        added = client(base, "endpoints", "add", receiver.url, "--type", "new-subscription")
        assert added.returncode == 0, added.stderr
        endpoint, secret = added.stdout.split("\n")[:2]
        assert endpoint.startswith("ep_") and secret.startswith("secret: whsec_")
        signed = client(base, "endpoints", "add", "http://127.0.0.1:9/ed25519",
                        "--signature", "ed25519", "--type", "nothing-declared")
        assert signed.returncode != 0 and "nothing-declared" in signed.stderr, signed.stderr
        signed = client(base, "endpoints", "add", "http://127.0.0.1:9/ed25519",
                        "--signature", "ed25519", "--description", "v1a")
        assert signed.returncode == 0, signed.stderr
        assert signed.stdout.split("\n")[1].startswith("public key: whpk_"), signed.stdout
        gone = urllib.request.Request(
            f"{base}/api/v1/tenants/acme/endpoints/{signed.stdout.split()[0]}", method="DELETE",
            headers={"authorization": f"Bearer {TOKEN}"})
        assert urllib.request.urlopen(gone, timeout=10).status == 204, "deliveries go to one endpoint"

        listed = client(base, "endpoints", "list")
        assert endpoint in listed.stdout and "new-subscription" in listed.stdout
        assert receiver.url in listed.stdout

        tail = subprocess.Popen([HERALD, "tail", "--every-ms", "200"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, HERALD_URL=base, HERALD_TOKEN=TOKEN,
                                         HERALD_TENANT="acme"))
        # Said once its first look is done: what is sent from now on is new to it.
        assert "following deliveries" in tail.stderr.readline()
        tailed = []
        reading = threading.Thread(target=lambda: tailed.extend(tail.stdout))
        reading.start()
        sent = [client(base, "send", "--type", "new-subscription", "--data", PAYLOAD)]
        payload_file = tmp_path / "payload.json"
        payload_file.write_text(PAYLOAD)
        sent.append(client(base, "send", "--type", "new-subscription", "--data", f"@{payload_file}"))
        sent.append(client(base, "send", "--type", "new-subscription", "--data", "-", stdin=PAYLOAD))
        ids = []
        for result in sent:
            assert result.returncode == 0, result.stderr
            assert "accepted: 1 deliveries" in result.stdout, result.stdout
            ids.append(result.stdout.split()[0])
        for _ in ids:
            headers, body = receiver.next()
            assert headers["webhook-id"] in ids
            assert body == PAYLOAD.encode(), "the payload arrives byte for byte as given"
        def succeeded():
            return [line for line in tailed if " succeeded " in line]

        deadline = time.monotonic() + 15
        while len(succeeded()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        tail.send_signal(signal.SIGINT)
        tail.wait(timeout=10)
        reading.join(timeout=10)
        assert tail.returncode == 0
        assert len(succeeded()) == 3, "".join(tailed)

        bad = client(base, "send", "--type", "new-subscription", "--data", '{"username": 1}')
        assert bad.returncode != 0
        assert "422" in bad.stderr and "/payload/username" in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr

        replayed = client(base, "replay", "--endpoint", endpoint, "--since", "2000-01-01T00:00:00Z")
        assert replayed.returncode == 0, replayed.stderr
        assert "finished: 3 of 3 events queued again" in replayed.stdout, replayed.stdout
        again = {receiver.next()[0]["webhook-id"] for _ in range(3)}
        assert again == set(ids), "a replay sends the same events, under the same ids"
    finally:
        process.terminate()
        process.wait(timeout=15)
        receiver.close()


def test_the_client_adds_channels_and_a_filter_and_sends_on_a_channel(tmp_path):
    receiver = Receiver()
    process, base = start_herald(f"sqlite://{tmp_path}/herald.db")
    try:
        call(base, "POST", "/api/v1/tenants", {"id": "acme"})
        wrong = client(base, "endpoints", "add", receiver.url, "--type", "new-subscription",
                       "--filter", '{"path": "/monthly_fe", "gte": 10}')
        assert wrong.returncode != 0 and "/filter/path" in wrong.stderr, wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
        added = client(base, "endpoints", "add", receiver.url, "--type", "new-subscription",
                       "--channel", "eu", "--filter", '{"path": "/monthly_fee", "gte": 1}')
        assert added.returncode == 0, added.stderr
        elsewhere = client(base, "send", "--type", "new-subscription", "--data", PAYLOAD,
                           "--channel", "us")
        assert "accepted: 0 deliveries" in elsewhere.stdout, elsewhere.stdout
        here = client(base, "send", "--type", "new-subscription", "--data", PAYLOAD,
                      "--channel", "us", "--channel", "eu")
        assert "accepted: 1 deliveries" in here.stdout, here.stdout
        headers, _ = receiver.next()
        assert headers["webhook-id"] == here.stdout.split()[0]
    finally:
        process.terminate()
        process.wait(timeout=15)
        receiver.close()


def test_the_client_needs_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HERALD_TOKEN", "HERALD_TENANT")}
    result = subprocess.run([HERALD, "endpoints", "list", "--tenant", "acme"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stderr.strip() == "herald: no token: pass --token or set HERALD_TOKEN"
