-- Kraków's 18 districts (dzielnice) and the starting interests, in Polish, English and
-- Ukrainian. Copied from the city's facts (docs/krakow.json); the service never reads that file.
INSERT INTO districts (slug, number, position, name_pl, name_en, name_uk) VALUES
    ('stare-miasto', 'I', 1, 'Stare Miasto', 'Stare Miasto (Old Town)', 'Старе Місто'),
    ('grzegorzki', 'II', 2, 'Grzegórzki', 'Grzegórzki', 'Гжегужки'),
    ('pradnik-czerwony', 'III', 3, 'Prądnik Czerwony', 'Prądnik Czerwony', 'Пронднік Червоний'),
    ('pradnik-bialy', 'IV', 4, 'Prądnik Biały', 'Prądnik Biały', 'Пронднік Білий'),
    ('krowodrza', 'V', 5, 'Krowodrza', 'Krowodrza', 'Кроводжа'),
    ('bronowice', 'VI', 6, 'Bronowice', 'Bronowice', 'Броновіце'),
    ('zwierzyniec', 'VII', 7, 'Zwierzyniec', 'Zwierzyniec', 'Звежинець'),
    ('debniki', 'VIII', 8, 'Dębniki', 'Dębniki', 'Дембники'),
    ('lagiewniki-borek-falecki', 'IX', 9, 'Łagiewniki-Borek Fałęcki', 'Łagiewniki-Borek Fałęcki', 'Лагевники-Борек Фаленцький'),
    ('swoszowice', 'X', 10, 'Swoszowice', 'Swoszowice', 'Свошовіце'),
    ('podgorze-duchackie', 'XI', 11, 'Podgórze Duchackie', 'Podgórze Duchackie', 'Подгуже Духацьке'),
    ('biezanow-prokocim', 'XII', 12, 'Bieżanów-Prokocim', 'Bieżanów-Prokocim', 'Бєжанув-Прокоцім'),
    ('podgorze', 'XIII', 13, 'Podgórze', 'Podgórze', 'Подгуже'),
    ('czyzyny', 'XIV', 14, 'Czyżyny', 'Czyżyny', 'Чижини'),
    ('mistrzejowice', 'XV', 15, 'Mistrzejowice', 'Mistrzejowice', 'Містшейовіце'),
    ('bienczyce', 'XVI', 16, 'Bieńczyce', 'Bieńczyce', 'Бєньчице'),
    ('wzgorza-krzeslawickie', 'XVII', 17, 'Wzgórza Krzesławickie', 'Wzgórza Krzesławickie', 'Взгужа Кшеславицькі'),
    ('nowa-huta', 'XVIII', 18, 'Nowa Huta', 'Nowa Huta', 'Нова Гута');

INSERT INTO interests (slug, position, name_pl, name_en, name_uk) VALUES
    ('safety', 1, 'Bezpieczeństwo i zagrożenia', 'Safety and emergencies', 'Безпека та надзвичайні ситуації'),
    ('weather', 2, 'Pogoda i powodzie', 'Weather and floods', 'Погода та повені'),
    ('air-quality', 3, 'Jakość powietrza (smog)', 'Air quality (smog)', 'Якість повітря (смог)'),
    ('transport', 4, 'Komunikacja miejska', 'Public transport', 'Громадський транспорт'),
    ('roads', 5, 'Drogi, remonty i objazdy', 'Roads, works and detours', 'Дороги, ремонти та об''їзди'),
    ('water', 6, 'Woda i kanalizacja', 'Water supply', 'Водопостачання'),
    ('heating-energy', 7, 'Ciepło i energia', 'Heating and electricity', 'Опалення та електроенергія'),
    ('waste', 8, 'Odpady i czystość', 'Waste collection', 'Вивезення сміття'),
    ('culture', 9, 'Kultura i wydarzenia', 'Culture and events', 'Культура та події'),
    ('participation', 10, 'Konsultacje i budżet obywatelski', 'Consultations and civic budget', 'Консультації та громадський бюджет'),
    ('city-services', 11, 'Sprawy urzędowe', 'City services and procedures', 'Міські послуги та процедури');
