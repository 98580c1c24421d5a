"""Locust people for bench/load.py: each signs in with a session cookie and reads mail.

LOAD_PEOPLE names a JSON file written by bench/load.py: a list of {"cookie", "folder", "messages",
"words"}; LOAD_HOSTS is a comma-separated list of web base URLs (people are spread over them);
LOAD_WAIT is "min,max" think time in seconds ("0,0" for a capacity run).
"""

from __future__ import annotations

import itertools
import json
import os
import random

from locust import FastHttpUser, between, constant, task

PEOPLE = json.loads(open(os.environ["LOAD_PEOPLE"]).read())
HOSTS = os.environ["LOAD_HOSTS"].split(",")
_low, _high = (float(x) for x in os.environ.get("LOAD_WAIT", "1,3").split(","))
_next = itertools.count()


class Person(FastHttpUser):
    host = HOSTS[0]
    wait_time = between(_low, _high) if _high > 0 else constant(0)
    connection_timeout = 10.0
    network_timeout = 10.0

    def on_start(self) -> None:
        n = next(_next)
        self.person = PEOPLE[n % len(PEOPLE)]
        self.base = HOSTS[n % len(HOSTS)].rstrip("/")
        self.headers = {"Cookie": f"sessionid={self.person['cookie']}", "HX-Request": "true"}

    def get(self, path: str, name: str) -> None:
        with self.client.get(self.base + path, headers=self.headers, name=name, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
            elif "login" in (r.url or ""):
                r.failure("redirected to the login page")

    @task(5)
    def list_folder(self) -> None:
        self.get(f"/mail/folder/{self.person['folder']}/", "list folder")

    @task(3)
    def open_message(self) -> None:
        self.get(f"/mail/message/{random.choice(self.person['messages'])}/", "open message")

    @task(2)
    def search(self) -> None:
        self.get(f"/mail/search/?q={random.choice(self.person['words'])}", "search")
