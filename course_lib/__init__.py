"""course_lib: the tested library behind the course
"Transformers in practice: the teacher/student architecture (knowledge distillation)".

Each module holds one concept and is introduced by one chapter; the notebooks import
from here instead of redefining code.
"""

__version__ = "0.1.0"
