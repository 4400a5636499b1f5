// ragbox UI
