# Pressluft stdout callback: one line per event, "PRESSLUFT_EVENT <token> <json>", which the
# executor turns into job step events; every other line it prints is a plain log line. The
# token is the attempt's secret (PRESSLUFT_EVENT_TOKEN, from the executor only): output of a
# task that merely looks like an event carries no token and stays a log line. Results of
# tasks marked no_log arrive here already censored by Ansible and are printed as such.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: pressluft
    type: stdout
    short_description: structured task events for the Pressluft executor
    description:
      - Prints PRESSLUFT_EVENT lines (with the attempt's token) (play, task start/end, result, stats) and plain log lines.
"""

PREFIX = "PRESSLUFT_EVENT %s " % (os.environ.get("PRESSLUFT_EVENT_TOKEN") or "-")
MAX_TEXT = 4000
META_ACTIONS = ("meta", "ansible.builtin.meta")


def _count_tasks(blocks):
    total = 0
    for block in blocks:
        for part in (block.block, block.rescue, block.always):
            for item in part or []:
                if hasattr(item, "block"):
                    total += _count_tasks([item])
                elif getattr(item, "action", "") not in META_ACTIONS:
                    total += 1
    return total


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "pressluft"

    def __init__(self):
        super().__init__()
        self.index = 0
        self.total = 0
        self.current = {}

    def _emit(self, **event):
        self._display.display(PREFIX + json.dumps(event, default=str), screen_only=True)

    def _log(self, text):
        for line in str(text).splitlines()[:200]:
            self._display.display(line[:MAX_TEXT], screen_only=True)

    def v2_playbook_on_play_start(self, play):
        try:
            self.total = _count_tasks(play.compile())
        except Exception:  # counting is best effort; events still flow
            self.total = 0
        self._emit(event="play", name=play.get_name(), total=self.total)

    def v2_playbook_on_task_start(self, task, is_conditional):
        # Meta tasks (flush_handlers, ...) get no end event and are not counted: not steps.
        if task.action in META_ACTIONS:
            return
        self.index += 1
        self.current = {"index": self.index, "total": max(self.total, self.index), "name": task.get_name()}
        self._emit(event="task_start", **self.current)

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _end(self, result, status):
        self._emit(event="task_end", status=status, **self.current)
        data = result._result
        facts = data.get("ansible_facts") or {}
        if "pressluft_result" in facts:
            self._emit(event="result", data=facts["pressluft_result"])

    def _details(self, result):
        data = result._result
        if data.get("censored"):
            self._log("(output hidden: no_log)")
            return
        for key in ("msg", "stdout", "stderr"):
            value = data.get(key)
            if value:
                self._log(value if isinstance(value, str) else json.dumps(value, default=str))

    def v2_runner_on_ok(self, result):
        if result._task.action in ("debug", "ansible.builtin.debug"):
            self._details(result)
        self._end(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._log("task failed: %s" % result._task.get_name())
        self._details(result)
        self._end(result, "ok" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._end(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._log("host unreachable: %s" % result._result.get("msg", ""))
        self._end(result, "failed")

    def v2_runner_item_on_failed(self, result):
        self._details(result)

    def v2_playbook_on_stats(self, stats):
        summary = {host: stats.summarize(host) for host in stats.processed}
        self._emit(event="stats", hosts=summary)
