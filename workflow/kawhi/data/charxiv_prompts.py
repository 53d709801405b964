"""CharXiv's question templates, verbatim from the benchmark's release (``src/constants.py``:
``DESCRIPTIVE_RESP_INST``, ``REASONING_RESP_INST``), and the official functions that fill them
(``src/descriptive_utils.py``: ``descriptive_query_helper``; ``src/reasoning_utils.py``:
``build_reasoning_queries``, ``get_number_instruction``).

The reasoning instruction depends on the question's answer type, the official ``inst_category``,
which the hub dataset calls ``reasoning_a_type`` (1 text-in-chart, 2 text-in-general, 3 number-in-chart,
4 number-in-general); ``reasoning_q_source`` is where the question came from and plays no part in the
prompt. The templates keep the official text exactly, indentation included; the model sees the filled
template with surrounding whitespace stripped, as lmms-eval sends it.
"""

from __future__ import annotations

from typing import Any

DESCRIPTIVE_RESP_INST: dict[int, str] = {
    1: ('{}what is its title?\n    * Your final answer should be the most relevant title of the plot '
         'that is explicitly written.\n    * If the plot does not have an explicit title or contains '
         "only a letter, answer 'Not Applicable'.\n    "),
    2: ('{}what is the label of the x-axis?\n    * Your final answer should be the label of the x-axis '
         'that is explicitly written, including the case when x-axis is shared across multiple subplots. '
         'When the x-axis is present on both the top and bottom of the plot, answer the label of the '
         "x-axis at the bottom.\n    * If the plot does not have an explicit x-axis label, answer 'Not "
         "Applicable'.\n    "),
    3: ('{}what is the label of the y-axis?\n    * Your final answer should be the label of the y-axis '
         'that is explicitly written, including the case when y-axis is shared across multiple subplots. '
         'When the y-axis is present on both the left and right of the plot, answer the label of the '
         "y-axis at the left.\n    * If the plot does not have an explicit y-axis label, answer 'Not "
         "Applicable'."),
    4: ('{}what is the leftmost labeled tick on the x-axis?\n    * Your final answer should be the tick '
         'value on the x-axis that is explicitly written, including the case when x-axis is shared '
         'across multiple subplots. When the x-axis is present on both the top and bottom of the plot, '
         'answer based on the axis at the bottom. Ignore units or scales that are written separately '
         'from the tick, such as units and scales from the axis label or the corner of the plot.'),
    5: ('{}what is the rightmost labeled tick on the x-axis?\n    * Your final answer should be the '
         'tick value on the x-axis that is explicitly written, including the case when x-axis is shared '
         'across multiple subplots. When the x-axis is present on both the top and bottom of the plot, '
         'answer based on the axis at the bottom. Ignore units or scales that are written separately '
         'from the tick, such as units and scales from the axis label or the corner of the plot.'),
    6: ('{}what is the spatially lowest labeled tick on the y-axis?\n    * Your final answer should be '
         'the tick value on the y-axis that is explicitly written, including the case when y-axis is '
         'shared across multiple subplots. When the y-axis is present on both the left and right of the '
         'plot, based on the axis at the left. Ignore units or scales that are written separately from '
         'the tick, such as units and scales from the axis label or the corner of the plot.'),
    7: ('{}what is the spatially highest labeled tick on the y-axis?\n    * Your final answer should be '
         'the tick value on the y-axis that is explicitly written, including the case when y-axis is '
         'shared across multiple subplots. When the y-axis is present on both the left and right of the '
         'plot, based on the axis at the left. Ignore units or scales that are written separately from '
         'the tick, such as units and scales from the axis label or the corner of the plot.'),
    8: ('{}what is difference between consecutive numerical tick values on the x-axis?\n    * Your '
         'final answer should be the difference between consecutive numerical tick values of the x-axis, '
         'including the case when x-axis is shared across multiple subplots. When the x-axis is present '
         'on both the top and bottom of the plot, answer based on the axis at the bottom. Ignore units '
         'or scales that are written separately from the tick, such as units and scales from the axis '
         'label or the corner of the plot.\n    * If the plot does not have an explicit x-axis tick '
         'value, or if the tick values are not numerical, or if the difference is not constant between '
         'all consecutive tick values, answer "Not Applicable".'),
    9: ('{}what is difference between consecutive numerical tick values on the y-axis?\n    * Your '
         'final answer should be the difference between consecutive numerical tick values of the y-axis, '
         'including the case when y-axis is shared across multiple subplots. When the y-axis is present '
         'on both the left and right of the plot, answer based on the axis at the left. Ignore units or '
         'scales that are written separately from the tick, such as units and scales from the axis label '
         'or the corner of the plot.\n    * If the plot does not have an explicit y-axis tick value, or '
         'if the tick values are not numerical, or if the difference is not constant between all '
         'consecutive tick values, answer "Not Applicable".'),
    10: ('{}how many lines are there?\n    * Your final answer should be the number of lines in the '
         'plot. Ignore grid lines, tick marks, and any vertical or horizontal auxiliary lines.\n    * If '
         'the plot does not contain any lines or is not considered a line plot, answer "Not Applicable".'),
    11: ('{}do any lines intersect?\n    * Your final answer should be "Yes" if any lines intersect, and '
         '"No" otherwise. Ignore grid lines, tick marks, and any vertical or horizontal auxiliary '
         'lines.\n    * If the plot does not contain any lines or is not considered a line plot, answer '
         '"Not Applicable".'),
    12: ('{}how many discrete labels are there in the legend?\n    * Your final answer should account '
         'for only labels relevant to the plot in the legend, even if the legend is located outside the '
         'plot. \n    * If the plot does not have a legend or no legend is not considered relevant to '
         'this plot, answer "Not Applicable".'),
    13: ('{}what are the names of the labels in the legend?\n    * You should write down the labels from '
         'top to bottom, then from left to right and separate the labels with commas. Your final answer '
         'should account for only labels relevant to the plot in the legend, even if the legend is '
         'located outside the plot.\n    * If the plot does not have a legend or no legend is not '
         'considered relevant to this plot, answer "Not Applicable".'),
    14: ('{}what is the difference between the maximum and minimum values of the tick labels on the '
         'continuous legend (i.e., colorbar)?\n    * You should remove the percentage sign (if any) in '
         'your answer.\n    * If the plot does not have an explicit colorbar-based continuous legend or '
         'the legend is not considered relevant to this subplot, answer "Not Applicable".'),
    15: ('{}what is the maximum value of the tick labels on the continuous legend (i.e., colorbar)?\n    '
         '* You should remove the percentage sign (if any) in your answer. \n    * If the plot does not '
         'have an explicit colorbar-based continuous legend or the legend is not considered relevant to '
         'this subplot, answer "Not Applicable".'),
    16: ('{}what is the general trend of data from left to right?\n    * Your final answer should be '
         'within a few words, such as "increases", "increases then stabilizes".'),
    17: ('{}What is the total number of explicitly labeled ticks across all axes?\n    * Your final '
         'answer should be the total number of explicitly labeled ticks across all axes, including the '
         'case when any axis is shared across multiple subplots.'),
    18: ('What is the layout of the subplots?\n    * Your final answer should follow "n by m" format, '
         'where n is the number of rows and m is the number of columns.\n    * If the plot does not '
         'contain subplots, answer "1 by 1".'),
    19: ('What is the number of subplots?\n    * Your final answer should be the total number of '
         'subplots in the plot.\n    * If the plot does not contain subplots, answer "1".'),
}

REASONING_RESP_INST: dict[int, str] = {
    1: ('{}\n    * Your final answer must be grounded to some text that is explicitly written and '
         'relevant to the question in the chart.\n    * If you need to answer multiple terms, separate '
         'them with commas.\n    * Unless specified in the question (such as answering with a letter), '
         'you are required to answer the full names of subplots and/or labels by default.\n    '),
    2: ('{}\n    * If there are options in the question, your final answer must conform to one of the '
         'options.\n    * If there are additional instructions in the question, follow them '
         'accordingly.\n    * If there are neither options nor additional instructions, you are allowed '
         'to respond with a short phrase only.\n    '),
    3: ('{}\n    * Your final answer must be grounded to a number that is exlicitly written and '
         "relevant to the question in the chart, even if it's an approximate value.\n    * You are "
         'allowed to extract numbers within some text when needed.\n    '),
    4: ('{}\n    {}\n    '),
}

REASONING_ANSWER_TYPES = {1: "text_in_chart", 2: "text_in_general", 3: "number_in_chart", 4: "number_in_general"}


def subplot_prefix(subplot_loc: Any, row: Any = None, col: Any = None) -> str:
    """Where the descriptive question points (``descriptive_query_helper``): the only plot, a grid cell,
    or a named subplot. The hub keeps ``subplot_loc`` null for grid figures and gives
    ``subplot_row``/``subplot_col`` instead (as lmms-eval reads it)."""
    if subplot_loc is None:
        subplot_loc = [row, col]
    if isinstance(subplot_loc, str):
        return f"For {subplot_loc}, "
    loc = list(subplot_loc)
    if len(loc) != 2 or loc[0] is None:
        raise ValueError(f"CharXiv: invalid subplot location {subplot_loc!r}")
    if loc[0] == 0:
        return "For the current plot, "
    return f"For the subplot at row {loc[0]} and column {loc[1]}, "


def descriptive_question(qid: int, subplot_loc: Any, row: Any = None, col: Any = None) -> str:
    """The official descriptive question of template ``qid`` (18 and 19 take no subplot prefix)."""
    template = DESCRIPTIVE_RESP_INST[int(qid)]
    return template if int(qid) in (18, 19) else template.format(subplot_prefix(subplot_loc, row, col))


def number_instruction(answer: str) -> str:
    """``get_number_instruction``: an integer, or a number with as many decimals as the answer has."""
    base = str(answer).split(".")
    if len(base) == 1:
        return "* Your final answer must be an exact integer."
    return f"* Your final answer must be a number with {len(base[1])} decimal places."


def reasoning_question(question: str, answer_type: int, answer: str) -> str:
    """The official reasoning prompt (``build_reasoning_queries``) for answer type ``answer_type``."""
    answer_type = int(answer_type)
    if answer_type not in REASONING_RESP_INST:
        raise ValueError(f"CharXiv reasoning_a_type must be one of 1-4, got {answer_type!r}")
    if answer_type == 4:
        return REASONING_RESP_INST[4].format(question, number_instruction(answer))
    return REASONING_RESP_INST[answer_type].format(question)
