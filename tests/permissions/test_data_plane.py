"""A non-admin's automations read and write only where an admin granted them, on real
files through the real API and the embedded engine: refused at create and update
(naming the path), and again at planning, so a revocation stops the next run."""

from __future__ import annotations

from permissions_site import Site

DELETE_ALICE = {
    "automation": "delete_file",
    "source": "out/alice/**",
    "trigger": "manual",
    "name": "clean up",
}


def test_a_non_admin_cannot_delete_another_users_output(site: Site) -> None:
    """The observed attack: bob's delete_file with source out/alice/** deleted alice's files."""
    alice, bob = site.user("alice"), site.user("bob")
    site.grant(alice, "out/alice", "full")
    site.grant(bob, "out/bob", "full")
    site.write({"out/alice/report.csv": "alice's", "out/alice/2024/q1.csv": "o", "out/bob/b": "b"})
    before = site.files()
    with site.client(bob) as client:
        reply = client.post("/automations", json=DELETE_ALICE)
        if reply.status_code == 201:  # what happened before folder permissions: run it
            site.run(bob, reply.json()["id"])
        with site.client(bob) as again:
            listed = again.get("/automations").json()
    assert site.files() == before
    assert reply.status_code == 403
    assert reply.json() == {
        "error": "source 'out/alice/**': no full permission on 'out/alice' and its subfolders.",
        "http-code": 403,
        "instance": reply.json()["instance"],
        "title": "Full Permission Required",
        "type": "not-authorized/full-permission-required",
    }
    assert listed == []  # the refused create left nothing behind


def test_writing_into_another_users_folder_is_refused_at_create_and_update(site: Site) -> None:
    bob = site.user("bob")
    site.grant(bob, "in", "readonly")
    site.grant(bob, "out/bob", "full")
    copy = {
        "automation": "copy_file",
        "source": "in/*.csv",
        "destinations": ["out/alice/"],
        "trigger": "manual",
    }
    with site.client(bob) as client:
        refused = client.post("/automations", json=copy)
        assert refused.status_code == 403
        assert refused.json()["type"] == "not-authorized/write-permission-required"
        assert refused.json()["error"] == (
            "destination 'out/alice/': no write (or full) permission on 'out/alice' "
            "and its subfolders."
        )
        created = client.post("/automations", json={**copy, "destinations": ["out/bob/"]})
        assert created.status_code == 201, created.text
        automation_id = created.json()["id"]
        patched = client.patch(
            f"/automations/{automation_id}", json={"destinations": ["out/bob/", "out/al/"]}
        )
        assert patched.status_code == 403
        assert "'out/al'" in patched.json()["error"]
        unreadable = client.patch(f"/automations/{automation_id}", json={"source": "secret/*"})
        assert unreadable.json()["type"] == "not-authorized/read-permission-required"
        # Nothing changed, and a change that does not touch paths is not checked.
        shown = client.get(f"/automations/{automation_id}").json()
        assert (shown["source"], shown["destinations"]) == ("in/*.csv", ["out/bob/"])


def test_revoking_a_permission_stops_the_next_run_at_planning(site: Site) -> None:
    bob = site.user("bob")
    grant = site.grant(bob, "out/bob", "full")
    site.write({"out/bob/a.tmp": "a", "out/bob/keep.txt": "k"})
    with site.client(bob) as client:
        reply = client.post(
            "/automations",
            json={"automation": "delete_file", "source": "out/bob/*.tmp", "trigger": "manual"},
        )
    assert reply.status_code == 201, reply.text
    automation_id = reply.json()["id"]
    site.revoke(grant)
    run, log = site.run(bob, automation_id)
    assert (run["status"], run["successful_operations"], run["failed_operations"]) == (
        "failure",
        0,
        0,
    )
    assert log[-1] == (
        "[error] Planning failed: permission denied: source 'out/bob/*.tmp': "
        "no full permission on 'out/bob'. Run finished with status failure."
    )
    assert site.files() == {"out/bob/a.tmp": "a", "out/bob/keep.txt": "k"}
    # Granted again, the same automation works.
    site.grant(bob, "out", "full")
    run, _ = site.run(bob, automation_id)
    assert (run["status"], run["successful_operations"]) == ("success", 1)
    assert site.files() == {"out/bob/keep.txt": "k"}


def test_a_permission_covers_subfolders_unless_it_is_not_recursive(site: Site) -> None:
    bob = site.user("bob")
    site.grant(bob, "in", "readonly", recursive=False)
    site.grant(bob, "out/bob", "writeonly")
    site.write({"in/a.csv": "a", "in/deep/b.csv": "b"})
    with site.client(bob) as client:
        nested = client.post(
            "/automations",
            json={"automation": "copy_file", "source": "in/**", "destinations": ["out/bob/"]},
        )
        assert nested.status_code == 403  # in's subfolders are not readable
        assert nested.json()["error"] == (
            "source 'in/**': no read (or full) permission on 'in' and its subfolders."
        )
        flat = client.post(
            "/automations",
            json={
                "automation": "copy_file",
                "source": "in/*.csv",
                "destinations": ["out/bob/x/y/"],
                "trigger": "manual",
            },
        )
    assert flat.status_code == 201, flat.text
    run, _ = site.run(bob, flat.json()["id"])
    assert run["status"] == "success"
    assert site.files()["out/bob/x/y/in/a.csv"] == "a"  # a subfolder of out/bob: covered
    assert "out/bob/x/y/in/deep/b.csv" not in site.files()


def test_each_matched_file_is_checked_at_planning(site: Site) -> None:
    """writeonly may add a file but not replace one: only the replacing copy fails."""
    bob = site.user("bob")
    site.grant(bob, "in", "readonly")
    site.grant(bob, "drop", "writeonly")
    site.write({"in/new.txt": "new", "in/old.txt": "longer text", "drop/old.txt": "short"})
    with site.client(bob) as client:
        reply = client.post(
            "/automations",
            json={
                "automation": "copy_file",
                "path": "in",
                "source": "*.txt",
                "destinations": ["drop/"],
                "overwrite_files": True,  # replacing is what writeonly does not allow
                "trigger": "manual",
            },
        )
    assert reply.status_code == 201, reply.text
    run, log = site.run(bob, reply.json()["id"])
    assert (run["status"], run["successful_operations"], run["failed_operations"]) == (
        "partial_failure",
        1,
        1,
    )
    assert site.files()["drop/new.txt"] == "new"
    assert site.files()["drop/old.txt"] == "short"
    assert (
        "[info] Planned #2: refuse in/old.txt -> drop/old.txt: permission denied: "
        "no full permission on 'drop'." in log
    )


def test_date_tokens_are_resolved_before_the_check(site: Site) -> None:
    bob = site.user("bob")
    site.grant(bob, "reports/bob", "writeonly")
    with site.client(bob) as client:
        refused = client.post(
            "/automations",
            json={"automation": "create_folder", "destinations": ["reports/%Y/bob"]},
        )
        assert refused.status_code == 403
        assert refused.json()["error"] == (
            "destination 'reports/%Y/bob': no write (or full) permission on 'reports' "
            "and its subfolders."
        )
        created = client.post(
            "/automations",
            json={
                "automation": "create_folder",
                "destinations": ["reports/bob/%Y"],
                "trigger": "manual",
            },
        )
    assert created.status_code == 201, created.text
    run, _ = site.run(bob, created.json()["id"])
    assert run["status"] == "success"
    assert [p.name for p in (site.root / "reports/bob").iterdir()] == [run["runtime"][:4]]


def test_admins_are_not_restricted(site: Site) -> None:
    site.write({"anywhere/x": "x"})
    with site.client(site.admin) as client:
        reply = client.post(
            "/automations",
            json={"automation": "delete_file", "source": "anywhere/*", "trigger": "manual"},
        )
    assert reply.status_code == 201, reply.text
    run, _ = site.run(site.admin, reply.json()["id"])
    assert (run["status"], site.files()) == ("success", {})
