"""The pure core: usage records, money, periods, the credit walk, the forecast, credit terms.

Nothing here touches a database, the network or the environment; every function is a function
of its arguments (and an injected clock where time matters).
"""
