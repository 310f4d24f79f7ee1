import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from alexnet_edu.live_plot import LivePlot, plot_history  # noqa: E402
from alexnet_edu.train import History  # noqa: E402


def three_epochs():
    return History(train_loss=[2.0, 1.0, 0.5], train_acc=[0.3, 0.6, 0.8], test_acc=[0.4, 0.65, 0.75])


def test_plot_history_draws_loss_left_and_both_accuracies_right_against_whole_epochs():
    loss_ax, acc_ax = plot_history(three_epochs(), label="AlexNet")
    (loss,) = loss_ax.get_lines()
    train, test = acc_ax.get_lines()
    assert list(loss.get_xdata()) == [1, 2, 3] and list(loss.get_ydata()) == [2.0, 1.0, 0.5]
    assert list(train.get_ydata()) == [0.3, 0.6, 0.8] and list(test.get_ydata()) == [0.4, 0.65, 0.75]
    assert [line.get_label() for line in (loss, train, test)] == [
        "AlexNet train loss", "AlexNet train acc", "AlexNet test acc"]
    plt.gcf().canvas.draw()
    for ax in (loss_ax, acc_ax):
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)     # no epoch 1.5
    plt.close("all")


def test_a_second_history_joins_the_same_axes():
    axes = plot_history(three_epochs(), label="LeNet", style="--")
    plot_history(three_epochs(), axes, label="AlexNet")
    assert len(axes[0].get_lines()) == 2 and len(axes[1].get_lines()) == 4
    assert axes[0].get_lines()[0].get_linestyle() == "--"
    plt.close("all")


def test_outside_a_notebook_there_is_no_live_plot():
    assert LivePlot.in_notebook() is False


def test_a_subclass_of_the_notebook_shell_counts_as_a_notebook(monkeypatch):
    # Colab's shell is a subclass of ipykernel's ZMQInteractiveShell, with its own class name
    import IPython
    from ipykernel.zmqshell import ZMQInteractiveShell

    class ColabShell(ZMQInteractiveShell):
        pass

    shell = object.__new__(ColabShell)     # the class is what counts; no kernel needed
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    assert LivePlot.in_notebook() is True
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())   # e.g. a terminal IPython
    assert LivePlot.in_notebook() is False
