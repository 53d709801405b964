# rules for stage: report (see rules/common.smk for paths and input functions)
