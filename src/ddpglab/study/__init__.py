"""Studies: variants x seeds from one spec, run in parallel worker processes into one store.

``run_study(spec, out)`` is the Python API of ``ddpglab study``; ``load_study(path)``
reads and resolves a spec without running it.
"""

from ddpglab.study.runner import StudyResult, run_study
from ddpglab.study.spec import StudySpec, load_spec
from ddpglab.study.variants import Study, load_study, resolve

__all__ = ["Study", "StudyResult", "StudySpec", "load_spec", "load_study", "resolve", "run_study"]
