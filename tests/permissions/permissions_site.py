"""A site for the folder-permission tests: `conveyor serve`'s app with its embedded engine
over real HTTP on 127.0.0.1, a storage root on disk, and users who hold exactly the grants
a test gives them (none to start with)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from conveyor.config import Settings
from conveyor.testing.seed import Account, Seeder

API = "/api/rest/v1"


@dataclass
class Site:
    url: str
    root: Path
    seed: Seeder
    admin: Account

    def client(self, account: Account | None) -> httpx.Client:
        headers = {} if account is None else {"X-FilesAPI-Key": account.key}
        return httpx.Client(base_url=self.url + API, headers=headers, timeout=30)

    def user(self, name: str) -> Account:
        """A non-admin with no folder permission at all (a user created after 0009)."""
        return self.seed.account(name, root=None)

    def grant(self, account: Account, path: str, permission: str, **more: Any) -> int:
        with self.client(self.admin) as admin:
            body = {"user_id": account.user.id, "path": path, "permission": permission, **more}
            reply = admin.post("/permissions", json=body)
        assert reply.status_code == 201, reply.text
        return int(reply.json()["id"])

    def revoke(self, permission_id: int) -> None:
        with self.client(self.admin) as admin:
            assert admin.delete(f"/permissions/{permission_id}").status_code == 204

    def write(self, files: dict[str, str]) -> None:
        for name, content in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)

    def files(self) -> dict[str, str]:
        return {
            p.relative_to(self.root).as_posix(): p.read_text()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    def run(self, account: Account, automation_id: int) -> tuple[dict[str, Any], list[str]]:
        """Run the automation now and wait for it to finish: the run and its log lines."""
        with self.client(account) as client:
            reply = client.post(f"/automations/{automation_id}/manual_run")
            assert reply.status_code == 201, reply.text
            run = reply.json()
            deadline = time.monotonic() + 60
            while run["completed_at"] is None:
                assert time.monotonic() < deadline, f"run {run['id']} did not finish"
                time.sleep(0.05)
                run = client.get(f"/automation_runs/{run['id']}").json()
            log = httpx.get(run["status_messages_url"]).text
        return run, [line.split(" ", 1)[1] for line in log.splitlines()]


def make_settings(database_url: str, tmp_path: Path) -> Settings:
    settings = Settings.from_env(
        {
            "CONVEYOR_HOME": str(tmp_path / "home"),
            "CONVEYOR_DATABASE_URL": database_url,
            "CONVEYOR_STORAGE_ROOT": str(tmp_path / "files"),
            "CONVEYOR_EMBEDDED_WORKERS": "1",
            "CONVEYOR_RATE_LIMIT_RATE": "0",
        }
    )
    settings.storage_root.mkdir(parents=True)
    return settings
