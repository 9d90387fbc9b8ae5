"""The bilingual glossary (术语表). Chapters add the terms they introduce here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One glossary entry: English, Chinese, a one-line meaning and the chapter that teaches it (chapter 00)."""

    english: str
    chinese: str
    meaning: str
    chapter: str


GLOSSARY: tuple[Term, ...] = (
    Term("token", "词元", "the unit a model reads; in the NER chapters one Chinese character", "00"),
    Term("embedding", "嵌入", "a learned vector for each token id", "02"),
    Term("vocabulary", "词表", "the list of known tokens; unknown ones map to <unk>", "04"),
    Term("padding", "填充", "filler tokens that make sequences in a batch equally long", "02"),
    Term("mask", "掩码", "a boolean tensor saying which positions may be attended to or counted", "02"),
    Term("attention", "注意力", "a weighted average of values, weights from query-key similarity", "02"),
    Term("self-attention", "自注意力", "attention where queries, keys and values come from one sequence", "02"),
    Term("scaled dot-product attention", "缩放点积注意力", "softmax(QKᵀ/√d_k)V", "02"),
    Term("multi-head attention", "多头注意力", "several attentions in parallel on split dimensions", "02"),
    Term("causal mask", "因果掩码", "forbids attending to later positions", "02"),
    Term("positional encoding", "位置编码", "adds order information that attention alone lacks", "03"),
    Term("residual connection", "残差连接", "x + f(x): the sub-layer learns a correction", "04"),
    Term("layer normalisation", "层归一化", "normalises each token vector to zero mean, unit variance", "04"),
    Term("pre-norm / post-norm", "前置/后置归一化", "LayerNorm before the sub-layer, or after the residual sum", "04"),
    Term("feed-forward network", "前馈网络", "two linear layers with a non-linearity, applied per token", "04"),
    Term("encoder", "编码器", "a stack of self-attention + feed-forward blocks", "04"),
    Term("named entity recognition (NER)", "命名实体识别", "tagging person, location and organisation names", "04"),
    Term("BIO tagging", "BIO标注", "B- begins an entity, I- continues it, O is outside", "04"),
    Term("warm-up", "学习率预热", "raising the learning rate from 0 over the first steps", "04"),
    Term("gradient clipping", "梯度裁剪", "rescaling gradients whose norm exceeds a threshold", "04"),
    Term("early stopping", "早停", "stopping when the dev score no longer improves", "04"),
    Term("dropout", "随机失活", "zeroing random activations during training as regularisation", "04"),
    Term("pre-training", "预训练", "training on a large generic corpus before the task", "01"),
    Term("fine-tuning", "微调", "continuing training on the task's labelled data", "01"),
    Term("model compression", "模型压缩", "making a model smaller or faster: distillation, pruning, quantisation", "01"),
    Term("knowledge distillation", "知识蒸馏", "training a student to match a teacher's outputs", "01"),
    Term("teacher model", "教师模型", "the large, accurate model whose outputs are imitated", "01"),
    Term("student model", "学生模型", "the small model trained to imitate the teacher", "01"),
    Term("logits", "logits（未归一化输出）", "a model's scores before softmax", "00"),
    Term("temperature", "温度", "T in softmax(z/T): larger T gives softer probabilities", "00"),
    Term("soft targets", "软目标", "the teacher's full probability distribution at temperature T", "05"),
    Term("hard targets", "硬目标", "the true one-hot labels", "05"),
    Term("dark knowledge", "暗知识", "what the small probabilities of wrong classes reveal", "05"),
    Term("KL divergence", "KL散度", "how far one distribution is from another", "05"),
    Term("distillation loss", "蒸馏损失", "α·CE(labels, student) + (1−α)·T²·KL(teacher_T ‖ student_T); α weighs the hard labels", "05"),
    Term("transfer set", "迁移集", "the inputs on which the student imitates the teacher", "06"),
    Term("data augmentation", "数据增强", "training on altered copies of the inputs, e.g. digits shifted by a few pixels", "06"),
    Term("control experiment", "对照实验", "the same training without the ingredient under test, to measure what it adds", "06"),
    Term("max-norm constraint", "最大范数约束", "rescaling each unit's incoming weights onto a ball after every step", "06"),
    Term("gap closed", "差距弥合比例", "(scratch − distilled) / (scratch − teacher) errors: the share of the teacher's advantage gained", "06"),
    Term("entity-level F1", "实体级F1", "F1 over whole entities: one counts only if its type and both ends are right (seqeval)", "07"),
    Term("token-level distillation", "词元级蒸馏", "the distillation loss at every real token of a sequence, padding left out", "07"),
    Term("hidden-state distillation", "隐藏状态蒸馏", "the student's hidden states, projected to the teacher's width, imitate the teacher's (TinyBERT)", "07"),
    Term("layer map", "层映射", "which student layer learns from which teacher layer, e.g. student m ← teacher 3m", "07"),
    Term("cascade", "级联结构", "a small model on top of the teacher's hidden states: it always runs the teacher too", "07"),
    Term("quantisation", "量化", "storing weights and activations in fewer bits, e.g. int8", "08"),
    Term("inference", "推理", "using a trained model to predict", "08"),
    Term("model bundle", "模型包", "a folder with the weights (safetensors) and a JSON config: architecture, vocabulary, labels, version", "08"),
    Term("ONNX", "开放神经网络交换格式", "a file format for a computation graph with its weights, run by ONNX Runtime without Python", "08"),
    Term("dynamic quantisation", "动态量化", "int8 weights stored ahead of time, activations quantised call by call; no calibration data", "08"),
    Term("sliding window", "滑动窗口", "reading a text longer than the model takes in overlapping pieces", "08"),
    Term("p95 latency", "P95延迟", "the time 95 % of calls stay under: the tail a user notices", "08"),
    Term("recurrent neural network (RNN)", "循环神经网络", "a model that reads a sequence one step at a time, carrying a state", "10"),
    Term("BiLSTM", "双向长短期记忆网络", "two LSTMs, one reading left to right and one right to left, their states joined", "10"),
    Term("language model", "语言模型", "a model that scores every token as the next one; it generates text by sampling", "10"),
    Term("perplexity", "困惑度", "exp of the mean negative log-likelihood per token: how many choices the model hesitates between", "10"),
    Term("key/value cache", "键值缓存", "the keys and values of earlier positions kept while generating, so each step runs one token", "10"),
    Term("word-level distillation", "词级蒸馏", "the student matches the teacher's next-token distribution at every position", "10"),
    Term("sequence-level distillation", "序列级蒸馏", "the student learns from whole sequences the teacher generated (Kim & Rush 2016)", "10"),
    Term("macro-F1", "宏平均F1", "the mean of the per-class F1 scores: every class counts equally, however rare", "10"),
)


def glossary_markdown(terms: tuple[Term, ...] = GLOSSARY) -> str:
    """The glossary as a Markdown table sorted by English term (chapter 00)."""
    lines = ["| English | 中文 | meaning | chapter |", "|---|---|---|---|"]
    for term in sorted(terms, key=lambda t: t.english.lower()):
        lines.append(f"| {term.english} | {term.chinese} | {term.meaning} | {term.chapter} |")
    return "\n".join(lines)
