"""Coarse to fine: how one stage's space and data follow from the trials before it.

``plan`` plans a stage (its space, fixed values, data budget and warm start) from the stage
before; ``narrowing`` narrows a space around the best trials and moves it by their diagnoses,
``importance`` ranks parameters by their effect, ``warm`` maps earlier trials into a new space,
``sampling`` turns a row budget into a subsample. Pure decisions over records: may import
``config`` (spaces, stage settings), ``trials.records`` and ``training``; never the search
loop, executors or MLflow.
"""
