"""No API key secret is kept or repeated anywhere: not in the database file (nor its
write-ahead log), not in the logs, not in an error message."""

import logging


async def test_secrets_are_in_no_file_log_or_error(kit, db, caplog):
    caplog.set_level(logging.DEBUG)
    gw = await kit.start()
    secrets = {kit.ADMIN, kit.READER}
    errors = []
    made = await gw.create_key(name="plain", budget=0.1)
    rotated = await gw.create_key(name="rotated", scopes=["admin", "inference"])
    secrets |= {made["key"], rotated["key"]}
    status, body = await gw.call("POST", f"/admin/keys/{rotated['id']}/rotate")
    secrets.add(body["key"])
    calls = [
        gw.chat(made["key"], kit.PRICED_MODEL), gw.chat(made["key"], kit.PRICED_MODEL),
        gw.chat(rotated["key"]),  # the old secret: 401
        gw.chat(body["key"]), gw.call("GET", "/admin/keys", key=kit.READER),
        gw.call("POST", "/admin/keys", key=kit.READER, json={"name": "x"}),  # 403
        gw.call("GET", "/admin/keys", key=made["key"]),  # 403
        gw.chat("fgw_" + "Q" * 43),  # unknown: 401
    ]
    secrets.add("fgw_" + "Q" * 43)
    await gw.call("POST", f"/admin/keys/{made['id']}/revoke")
    calls.append(gw.chat(made["key"]))  # revoked: 401
    for call in calls:
        status, answer = await call
        if status >= 400:
            errors.append(answer["error"]["message"])
    assert len(errors) >= 5
    await gw.ring.flush()
    files = list(db.parent.glob(db.name + "*"))  # the file, its -wal and -shm
    stored = b"".join(path.read_bytes() for path in files)
    await gw.client.close()  # writes what is queued, checkpoints and closes
    stored += b"".join(path.read_bytes() for path in db.parent.glob(db.name + "*"))
    assert len(files) > 1
    assert made["id"].encode() in stored  # the keys are in there, by id
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in caplog.text
        assert all(secret not in message for message in errors)
