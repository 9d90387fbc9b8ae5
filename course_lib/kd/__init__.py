"""Knowledge distillation (chapters 05 and 07): losses, the frozen teacher, distillers, layer maps, methods.

``kd_loss(student_logits, teacher_logits, labels, T, alpha, mask=None)`` is the public entry point.
"""

from course_lib.kd.losses import kd_loss

__all__ = ["kd_loss"]
