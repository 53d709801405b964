"""The official LLM-judge prompts of the benchmarks whose official scoring asks a GPT model, verbatim, and
the functions that fill them as the official scripts do. On the paper profile the judge that answers
them is Qwen3-VL-30B-A3B (config/paper.yaml, ``eval.judge``); see kawhi.judge.

- MathVista ``evaluation/extract_answer.py``: ``create_test_prompt(demo_prompt, query, response)``.
- MathVerse ``evaluation/extract_answer_s1.py``: ``create_test_prompt(demo_prompt_extract, response)``;
  ``evaluation/score_answer_s2.py``: ``create_test_prompt(demo_prompt_score, inst)``.
"""

from __future__ import annotations

# lupantech/MathVista evaluation/prompts/ext_ans.py: demo_prompt (few-shot answer extraction)
MATHVISTA_EXTRACT_DEMO = (
    '\n'
    'Please read the following example. Then extract the answer from the model response and '
    'type it at the end of the prompt.\n'
    '\n'
    'Hint: Please answer the question requiring an integer answer and provide the final value, '
    'e.g., 1, 2, 3, at the end.\n'
    'Question: Which number is missing?\n'
    '\n'
    'Model response: The number missing in the sequence is 14.\n'
    '\n'
    'Extracted answer: 14\n'
    '\n'
    'Hint: Please answer the question requiring a floating-point number with one decimal place '
    'and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.\n'
    'Question: What is the fraction of females facing the camera?\n'
    '\n'
    'Model response: The fraction of females facing the camera is 0.6, which means that six '
    'out of ten females in the group are facing the camera.\n'
    '\n'
    'Extracted answer: 0.6\n'
    '\n'
    'Hint: Please answer the question requiring a floating-point number with two decimal '
    'places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.\n'
    'Question: How much money does Luca need to buy a sour apple candy and a butterscotch '
    'candy? (Unit: $)\n'
    '\n'
    'Model response: Luca needs $1.45 to buy a sour apple candy and a butterscotch candy.\n'
    '\n'
    'Extracted answer: 1.45\n'
    '\n'
    'Hint: Please answer the question requiring a Python list as an answer and provide the '
    'final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.\n'
    'Question: Between which two years does the line  graph saw its maximum peak?\n'
    '\n'
    'Model response: The line graph saw its maximum peak between 2007 and 2008.\n'
    '\n'
    'Extracted answer: [2007, 2008]\n'
    '\n'
    'Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, '
    'at the end.\n'
    'Question: What fraction of the shape is blue?\n'
    'Choices:\n'
    '(A) 3/11\n'
    '(B) 8/11\n'
    '(C) 6/11\n'
    '(D) 3/5\n'
    '\n'
    'Model response: The correct answer is (B) 8/11.\n'
    '\n'
    'Extracted answer: B\n'
)

# ZrrSkywalker/MathVerse evaluation/prompts.py: demo_prompt_extract (step 1, extraction)
MATHVERSE_EXTRACT_DEMO = (
    '\n'
    "I am providing you a response from a model to a math problem, termed 'Model Response'. "
    "You should extract the answer from the response as 'Extracted Answer'. Directly output "
    'the extracted answer with no explanation.\n'
    '\n'
    '1.\n'
    "Model response: 'Rounded to two decimal places, the perimeter of the sector is approximately:\n"
    '\n'
    "(-2, 1)'\n"
    'Extracted Answer: (-2, 1)\n'
    '\n'
    '2.\n'
    "Model response: 'at those points.\n"
    '\n'
    'Therefore, the correct option that represents the meaning of the intersection points of '
    'the graphs is:\n'
    '\n'
    'D. They give the solutions to the equation $f(t)=g(t)$.",\'\n'
    'Extracted Answer: D\n'
    '\n'
    '3.\n'
    "Model response: ' at 1 (there's a closed circle at y = 1), the range in interval notation "
    'is \\((-4, 1]\\).\n'
    '\n'
    'Final values:\n'
    'Domain: \\((-3, 3]\\)\n'
    "Range: \\((-4, 1]\\)'\n"
    'Extracted Answer: Domain: \\((-3, 3]\\)\n'
    'Range: \\((-4, 1]\\)\n'
    '\n'
    '4.\n'
    "Model response: 'As it stands, I cannot provide the correct option letter because there "
    "isn't enough information to solve for 'y'.'\n"
    'Extracted Answer: null\n'
    '\n'
    '5.\n'
    "Model response: 'Given that AB = 17.6 meters, we can now substitute into the equation:\n"
    '\n'
    'd = 17.6 / cos(38°)\n'
    '\n'
    'Therefore, to one decimal place, the distance d between Ned and Bart is approximately '
    "22.3 meters.'\n"
    'Extracted answer: 22.3\n'
    '\n'
    '6.\n'
    'Model response:  have all the coefficients for the quadratic function:\n'
    '\\( f(x) = ax^2 + bx + c \\)\n'
    '\\( f(x) = -1x^2 - 2x + 1 \\)\n'
    '\n'
    'Therefore, the equation for the graphed function \\( f \\) is:\n'
    '\\( f(x) = -x^2 - 2x + 1 \\)"\'\n'
    'Extracted answer: f(x) = -x^2 - 2x + 1\n'
    '\n'
    '7.\n'
)

# ZrrSkywalker/MathVerse evaluation/prompts.py: demo_prompt_score (step 2, judgement; str.format template)
MATHVERSE_SCORE_DEMO = (
    '\n'
    'Below are two answers to a math question. Question is [Question], [Standard Answer] is '
    'the standard answer to the question, and [Model_answer] is the answer extracted from a '
    "model's output to this question.  Determine whether these two answers are consistent.\n"
    'Please note that only when the [Model_answer] completely matches the [Standard Answer] '
    'means they are consistent. For non-multiple-choice questions, if the meaning is expressed '
    'in the same way, it is also considered consistent, for example, 0.5m and 50cm.\n'
    'If they are consistent, Judement is 1; if they are different, Judement is 0.\n'
    '\n'
    '[Question]: Write the set of numbers represented on the number line in interval notation.\n'
    '[Standard Answer]: (-2,1]\n'
    '[Model_answer] : Extracted Answer: \\((-2, 1)\\)\n'
    'Judgement: 0\n'
    '\n'
    '[Question]: As shown in the figure, circle O has a radius 1.0, if angle BAC = 60.0, then '
    'the length of BC is ()\n'
    'Choices:\n'
    'A:2\n'
    'B:2√{{3}}\n'
    'C:√{{3}}\n'
    'D:2√{{2}}\n'
    '[Standard Answer]: C\n'
    '[Model_answer] : B:2√{{3}}\n'
    'Judgement: 0\n'
    '\n'
    '[Question]: Find the domain and range of the function f using interval notation.\n'
    '[Standard Answer]: domain: [-4, 0) and range: (-3, 1]\n'
    '[Model_answer] : Range: \\((-4, 1]\\)\n'
    'Judgement: 0\n'
    '\n'
    '[Question]: As shown in the figure, circle O has a radius 1.0, if angle BAC = 60.0, then '
    'the length of BC is ()\n'
    'Choices:\n'
    'A:2\n'
    'B:2√{{3}}\n'
    'C:√{{3}}\n'
    'D:2√{{2}}\n'
    '[Standard Answer]: C\n'
    '[Model_answer] : null\n'
    'Judgement: 0\n'
    '\n'
    '[Question]: Given the graph of the ellipse that intersects with x-axis at 9 and -9 and '
    'with y-axis at 3 and -3, determine its equation.A. \\frac{{x^2}}{{81}} + \\frac{{y^2}}{{9}} '
    '= 1 B. Can not determine.\n'
    '\n'
    '[Standard Answer]: A\n'
    '[Model_answer] : \\frac{{x^2}}{{81}} + \\frac{{y^2}}{{9}} = 1\n'
    'Judgement: 1\n'
    '\n'
    '[Question]: {question}\n'
    '[Standard Answer]: {gt}\n'
    '[Model_answer] : {extraction}\n'
    'Judgement: '
)


def mathvista_extract_prompt(query: str, response: str) -> str:
    return f"{MATHVISTA_EXTRACT_DEMO.strip()}\n\n{query}\n\n{response}\n\nExtracted answer: "


def mathverse_extract_prompt(response: str) -> str:
    return f"{MATHVERSE_EXTRACT_DEMO.strip()}\n\nModel response: '{response}'\nExtracted Answer: "


def mathverse_score_prompt(question: str, answer: str, extraction: str) -> str:
    return MATHVERSE_SCORE_DEMO.strip().format(question=question, gt=answer, extraction=extraction)
