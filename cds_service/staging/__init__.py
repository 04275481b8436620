"""AJCC 8th-edition soft tissue sarcoma staging: tables as data (``ajcc8.yaml``) and their evaluator."""

from cds_service.staging.ajcc8 import Grouping, group, has_stage_groups, rows, t_from_size, table_for

__all__ = ["Grouping", "group", "has_stage_groups", "rows", "t_from_size", "table_for"]
