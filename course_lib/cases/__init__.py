"""The course's cases (chapters 02–10): each is data, recipes and models.

MNIST, MSRA NER, news, poetry, translation, deployment.
"""
