"""Thin adapter: curate manifest → Detectron2 datasets → PointRend config → trainer/evaluator."""
