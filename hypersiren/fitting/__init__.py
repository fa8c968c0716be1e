"""Single-signal fitting: one SIREN per signal, for every application of the SIREN paper.

`fit_signal(config, run_dir)` fits and writes a run folder; `preset_config(task, "paper" | "default")`
gives each task's recipe; `load_task` reads the input; the tasks are in `tasks` (grid signals and
Poisson) and `fields` (SDF, Helmholtz, wave); `mesh.extract_mesh` is chunked marching cubes.
"""

from .config import DERIVATIVES, FIT_PRESETS, TASKS, FitConfig, preset_config
from .loop import fit_signal, learning_rate, load_siren, load_task, save_siren
from .mesh import Mesh, extract_mesh, surface_distance

__all__ = ["DERIVATIVES", "FIT_PRESETS", "TASKS", "FitConfig", "Mesh", "extract_mesh", "fit_signal", "learning_rate",
           "load_siren", "load_task", "preset_config", "save_siren", "surface_distance"]
