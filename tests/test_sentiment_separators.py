"""A sentiment CSV separated by semicolons or tabs (a spreadsheet's export in some
locales) is refused saying so, as the forecast task does, not with a hint to choose
columns that no --text-column can follow."""
import pytest

from recurrent.errors import UserError
from recurrent_plugins.sentiment.dataset import read_csv


@pytest.mark.parametrize("separator, name", [(";", "semicolon"), ("\t", "tab")])
def test_a_file_not_separated_by_commas_is_named_so(tmp_path, separator, name):
    path = tmp_path / "reviews.csv"
    path.write_text(f"text{separator}label\ngreat film{separator}pos\ndull{separator}neg\n")
    with pytest.raises(UserError) as refused:
        read_csv(str(path), "text", "label")
    message = str(refused.value)
    assert f"is {name}-separated" in message and "save it with commas" in message
    assert "--text-column" not in message and "\n" not in message


def test_a_comma_file_missing_a_column_still_names_the_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review;note,label\ngreat,pos\n")  # two columns: not this case
    with pytest.raises(UserError, match="no column 'text'; columns found: 'review;note'"):
        read_csv(str(path), "text", "label")
