# rules for stage: train (see rules/common.smk for paths and input functions)
