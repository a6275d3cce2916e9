//! Aligned text tables: columns separated by two spaces, numbers right-aligned, text cells
//! longer than [`MAX_CELL`] characters cut with `…` (the JSON output is never cut).

/// Widest text cell shown.
pub const MAX_CELL: usize = 80;

/// A column: its header and whether its values are numbers.
pub struct Column {
    pub header: &'static str,
    pub numeric: bool,
}

pub const fn text(header: &'static str) -> Column {
    Column {
        header,
        numeric: false,
    }
}

pub const fn number(header: &'static str) -> Column {
    Column {
        header,
        numeric: true,
    }
}

/// The table as lines ending with `\n`.
pub fn render(columns: &[Column], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let widest = rows
                .iter()
                .map(|r| r.get(i).map_or(0, |v| v.chars().count()));
            widest.fold(c.header.len(), usize::max)
        })
        .collect();
    let headers: Vec<String> = columns.iter().map(|c| c.header.to_string()).collect();
    let mut out = line(columns, &widths, &headers);
    for row in &rows {
        out.push_str(&line(columns, &widths, row));
    }
    out
}

fn cut(cell: &str) -> String {
    if cell.chars().count() <= MAX_CELL {
        return cell.to_string();
    }
    let mut kept: String = cell.chars().take(MAX_CELL - 1).collect();
    kept.push('…');
    kept
}

fn line(columns: &[Column], widths: &[usize], cells: &[String]) -> String {
    let mut parts = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let cell = cells.get(i).map_or("", String::as_str);
        let width = widths[i];
        let last = i + 1 == columns.len();
        parts.push(match (column.numeric, last) {
            (true, _) => format!("{cell:>width$}"),
            (false, true) => cell.to_string(),
            (false, false) => format!("{cell:<width$}"),
        });
    }
    let mut text = parts.join("  ");
    text.truncate(text.trim_end().len());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_numbers_align_right() {
        let columns = [text("PATH"), number("CALLS"), text("NOTE")];
        let rows = vec![
            vec!["/a".to_string(), "5".to_string(), "x".to_string()],
            vec!["/longer".to_string(), "1200".to_string(), "".to_string()],
        ];
        let table = render(&columns, &rows);
        assert_eq!(
            table,
            "PATH     CALLS  NOTE\n/a           5  x\n/longer   1200\n"
        );
    }

    #[test]
    fn very_long_cells_are_cut_to_the_maximum_width() {
        let long = "x".repeat(200);
        let table = render(&[text("PATH")], &[vec![long]]);
        let row = table.lines().nth(1).unwrap();
        assert_eq!(row.chars().count(), MAX_CELL);
        assert!(row.ends_with('…'));
    }
}
