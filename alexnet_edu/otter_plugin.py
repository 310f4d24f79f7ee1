"""An otter-grader plugin that grades every submission in the seconds-long ``smoke`` profile.

The autograder zip names it in its ``otter_config.json``; otter calls ``before_execution`` with the
submission, whose first cell then sets ``ALEXNET_EDU_PROFILE`` before any chapter code runs, and
``ALEXNET_EDU_NO_WIDGETS``, so that the explorers draw their first view without a widget.
"""

import nbformat
from otter.plugins import AbstractOtterPlugin

PROFILE_CELL = ('import os\nos.environ["ALEXNET_EDU_PROFILE"] = "smoke"   # added by the autograder\n'
                'os.environ["ALEXNET_EDU_NO_WIDGETS"] = "1"   # explorers draw once (alexnet_edu.widgets.explorer)')


class SmokeProfile(AbstractOtterPlugin):
    def before_execution(self, submission):
        if isinstance(submission, str):   # a .py submission
            return PROFILE_CELL + "\n" + submission
        submission.cells.insert(0, nbformat.v4.new_code_cell(PROFILE_CELL))
        return submission
